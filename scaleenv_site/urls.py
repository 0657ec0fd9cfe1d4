from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from environments import views as environment_views

from .api_router import build_router

# Swagger UI and Redoc start with an inline script and inline styles (their templates: templates/
# drf_spectacular/); everything still loads from this site only.
DOCS_POLICY = csp_update({"script-src": ["'unsafe-inline'"], "style-src": ["'unsafe-inline'"],
                          "worker-src": ["'self'", "blob:"]})

urlpatterns = [
    path("api/", include("tasks.api_urls")),  # first: the agents' calls are most of the requests
    path("api/", include(build_router().urls)),
    path("admin/", admin.site.urls),
    path("healthz", environment_views.healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", DOCS_POLICY(SpectacularSwaggerView.as_view(url_name="api-schema")), name="api-docs"),
    path("api/redoc/", DOCS_POLICY(SpectacularRedocView.as_view(url_name="api-schema")), name="api-redoc"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("tasks.urls")),
    path("", include("environments.urls")),
]

handler404 = "scaleenv_site.api.not_found"
