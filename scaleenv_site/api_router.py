"""The project's API router, built from each installed app's own ``api_urls.routes``."""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec

from django.apps import apps
from rest_framework.routers import DefaultRouter


def build_router() -> DefaultRouter:
    router = DefaultRouter()
    for config in apps.get_app_configs():
        module_name = f"{config.name}.api_urls"
        if find_spec(module_name) is None:
            continue
        for prefix, viewset, basename in import_module(module_name).routes:
            router.register(prefix, viewset, basename=basename)
    return router
