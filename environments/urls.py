from django.urls import path

from . import views

app_name = "environments"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("batches/<int:pk>/progress/", views.batch_progress, name="batch-progress"),
    path("domains/<slug:slug>/", views.domain_detail, name="domain-detail"),
    path("domains/<slug:slug>/graph.json", views.domain_graph, name="domain-graph"),
    path("domains/<slug:slug>/tools/<str:name>/", views.tool_detail, name="tool-detail"),
]
