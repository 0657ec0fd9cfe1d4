"""The project's API router, built from each installed app's own ``api_urls.routes``."""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec

from django.apps import apps
from rest_framework.routers import DefaultRouter


# Matched first: every call of an agent resolves one of these, and URL patterns are tried in order.
HOT_PREFIXES = ("sessions",)


def build_router() -> DefaultRouter:
    routes = []
    for config in apps.get_app_configs():
        module_name = f"{config.name}.api_urls"
        if find_spec(module_name) is not None:
            routes += import_module(module_name).routes
    router = DefaultRouter()
    for prefix, viewset, basename in sorted(routes, key=lambda route: route[0] not in HOT_PREFIXES):
        router.register(prefix, viewset, basename=basename)
    return router
