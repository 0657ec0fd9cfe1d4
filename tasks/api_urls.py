"""This app's API routes; scaleenv_site.api_router collects every app's ``routes``."""

from . import api

routes = [
    ("tasks", api.TaskViewSet, None),
    ("runs", api.RunViewSet, None),
    ("sessions", api.SessionViewSet, "session"),
]
