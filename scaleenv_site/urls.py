from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from environments import views as environment_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", environment_views.healthz, name="healthz"),
    path("api/", include("environments.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("tasks/", include("tasks.urls")),
    path("", include("environments.urls")),
]
