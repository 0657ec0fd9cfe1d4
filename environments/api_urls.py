"""This app's API routes; scaleenv_site.api_router collects every app's ``routes``."""

from . import api

routes = [
    ("batches", api.BatchViewSet, None),
    ("domains", api.DomainViewSet, None),
    ("tools", api.ToolViewSet, None),
    ("tool-tests", api.ToolTestViewSet, None),
    ("dependencies", api.DependencyViewSet, None),
]
