from django.urls import path

from . import views

app_name = "environments"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("batches/<int:pk>/progress/", views.batch_progress, name="batch-progress"),
    path("domains/<slug:slug>/", views.domain_detail, name="domain-detail"),
    path("domains/<slug:slug>/graph.json", views.domain_graph, name="domain-graph"),
    path("domains/<slug:slug>/tools/<str:name>/", views.tool_detail, name="tool-detail"),
    # The dependency graph widget's side panels (issue 9, item 5); its JSON is domain-graph above.
    path("domains/<slug:slug>/graph/tools/<int:pk>/", views.graph_tool_panel, name="tool-graph-panel"),
    path("domains/<slug:slug>/graph/edges/<int:pk>/", views.graph_edge_panel, name="dependency-graph-panel"),
]
