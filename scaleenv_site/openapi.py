"""The OpenAPI schema class (REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]); apart from scaleenv_site.api,
which DRF's settings import before its views exist (drf-spectacular's AutoSchema needs them)."""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi

from .api import LOOKUP_VALUE_REGEX


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, typing a path id by its model field (an integer id, a slug) as it does for
    the router's default lookup pattern, not as any string matching LOOKUP_VALUE_REGEX."""

    def _resolve_path_parameters(self, variables: list[str]) -> list[dict[str, Any]]:
        path_regex = self.path_regex
        self.path_regex = path_regex.replace(f">{LOOKUP_VALUE_REGEX})", ">[^/.]+)")
        try:
            return super()._resolve_path_parameters(variables)
        finally:
            self.path_regex = path_regex
