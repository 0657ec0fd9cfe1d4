"""This app's API routes; scaleenv_site.api_router collects every app's ``routes``."""

from django.urls import re_path

from . import api

# Included before the router's routes (scaleenv_site/urls.py): the plain path of the two calls agents
# make most, which hands every other request to the router's view of the same action.
urlpatterns = [
    re_path(r"^sessions/(?P<pk>[^/]+)/(?P<action_path>tool-calls|messages)/$", api.plain_session_call,
            name="session-plain-call"),
]

routes = [
    ("tasks", api.TaskViewSet, None),
    ("runs", api.RunViewSet, None),
    ("sessions", api.SessionViewSet, "session"),
]
