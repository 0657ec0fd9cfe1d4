"""API wiring shared by every app's endpoints: a strict JSON parser, role-based read permissions,
the error shape, and the OpenAPI hook that documents the 4xx answers every operation can give."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework import serializers
from rest_framework.exceptions import APIException, ParseError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.settings import api_settings

MAX_INT = 2**53 - 1  # beyond this a JSON number is not exact in every client


# A path id is any one path segment: the view itself answers a JSON 404 for what is no row. (The
# router's default, [^/.]+, leaves an id with a dot, e.g. "1.5", to Django's HTML 404 page.) The
# schema still types ids by their model field (scaleenv_site.openapi.AutoSchema).
LOOKUP_VALUE_REGEX = "[^/]+"


class BadInput(ParseError):
    default_detail = "The request body is not acceptable."


class TooLarge(APIException):
    status_code = 413
    default_detail = "The request body is too large."


def check_value(value: Any, depth: int = 0, max_depth: int | None = None) -> None:
    """Refuse what would break storage or a page later: lone surrogates, NUL characters (PostgreSQL
    stores neither in text nor in jsonb), deep nesting, huge numbers."""
    max_depth = max_depth or settings.SCALEENV_API_MAX_DEPTH
    if depth > max_depth:
        raise BadInput(f"the JSON is nested deeper than {max_depth} levels")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadInput("a string holds a lone surrogate (\\ud800-\\udfff), which is not valid Unicode") from None
        if "\x00" in value:
            raise BadInput("a string holds a NUL character (\\u0000), which cannot be stored")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if abs(value) > MAX_INT:
            raise BadInput(f"a number is out of range (|n| > {MAX_INT})")
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise BadInput("a number is not finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_value(key, depth + 1, max_depth)
            check_value(item, depth + 1, max_depth)
    elif isinstance(value, list):
        for item in value:
            check_value(item, depth + 1, max_depth)


def _no_constant(name: str) -> Any:
    raise BadInput(f"{name} is not valid JSON")


class StrictJSONParser(JSONParser):
    """JSON that is valid UTF-8, finite, shallow enough and free of lone surrogates, or a 400."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        request = (parser_context or {}).get("request")
        length = str(request.META.get("CONTENT_LENGTH") or "0") if request is not None else "0"
        if length.isdigit() and int(length) > settings.SCALEENV_API_MAX_BODY_BYTES:  # refuse before reading it
            raise TooLarge(f"the request body is over {settings.SCALEENV_API_MAX_BODY_BYTES} bytes "
                           "(SCALEENV_API_MAX_BODY_BYTES)")
        raw = stream.read(settings.SCALEENV_API_MAX_BODY_BYTES + 1) if stream is not None else b""
        if len(raw) > settings.SCALEENV_API_MAX_BODY_BYTES:
            raise TooLarge(f"the request body is over {settings.SCALEENV_API_MAX_BODY_BYTES} bytes "
                           "(SCALEENV_API_MAX_BODY_BYTES)")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadInput(f"the request body is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
        try:
            data = json.loads(text, parse_constant=_no_constant) if text.strip() else {}
        except RecursionError:
            raise BadInput(f"the JSON is nested deeper than {settings.SCALEENV_API_MAX_DEPTH} levels") from None
        except json.JSONDecodeError as exc:
            raise BadInput(f"JSON parse error: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
        check_value(data)
        return data


class JSONFirstNegotiation(DefaultContentNegotiation):
    """Content negotiation for views with one renderer: a request that accepts anything (no Accept
    header, ``*/*``, or ``application/json`` exactly) gets it without DRF parsing the header; any
    other request (a format in the URL, another or a weighted media type) is negotiated by DRF as
    before, 406 included. Agents send the first kind hundreds of times a second."""

    ANY = frozenset({"", "*/*", "application/json"})  # Accept values that take JSON as it is

    def select_renderer(self, request: Any, renderers: list[Any], format_suffix: str | None = None) -> Any:
        if (len(renderers) == 1 and format_suffix is None
                and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
                and request.META.get("HTTP_ACCEPT", "").strip() in self.ANY):
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)


class ReadByRole(BasePermission):
    """Reading a model's rows needs the ``view`` permission of that model (roles grant them: see
    environments/roles.py); the API is read-only except where a view says otherwise."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        model = getattr(getattr(view, "queryset", None), "model", None)
        if model is None:
            return True
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            return False
        return request.user.has_perm(f"{model._meta.app_label}.view_{model._meta.model_name}")


class ErrorSerializer(serializers.Serializer):
    """Every refusal: a 4xx with a sentence saying why (and, for invalid fields, which and why)."""

    detail = serializers.CharField(help_text="what was wrong with the request")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False,
        help_text="for invalid input: the messages of each field or query parameter (nested fields as "
                  f"'a.b', messages about no single field under '{api_settings.NON_FIELD_ERRORS_KEY}')")


ERROR_ANSWERS = {"400": "Bad input: invalid JSON, a lone surrogate, nesting deeper than the limit, a number out "
                        "of range, or a field or query parameter that fails validation (`errors` says which).",
                 "413": "The request body is over SCALEENV_API_MAX_BODY_BYTES.",
                 "415": "The request body is not JSON (send Content-Type: application/json).",
                 "401": "No or an invalid token.",
                 "403": "The token's role may not do this.",
                 "404": "Not found (or not yours), or a page or cursor that does not exist.",
                 "429": "Too many requests for this token (throttled)."}


def add_error_answers(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing: every operation documents the refusals it can give."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", {  # what drf-spectacular makes of ErrorSerializer when no view names it
        "type": "object", "required": ["detail"],
        "properties": {"detail": {"type": "string"},
                       "errors": {"type": "object", "additionalProperties": {"type": "array",
                                                                            "items": {"type": "string"}}}}})
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for path in result.get("paths", {}).values():
        for method, operation in path.items():
            answers = operation.setdefault("responses", {})
            body = "requestBody" in operation  # parsed: it may be malformed, too large or not JSON
            codes = ["401", "403", "404", "429"] + (["400"] if method == "get" or body else []) + (
                ["413", "415"] if body else [])
            for code in codes:
                answers.setdefault(code, {"description": ERROR_ANSWERS[code], **error})
    return result


def _field_messages(data: Any, path: str = "") -> list[tuple[str, str]]:
    """(field path, message) pairs of a DRF validation error's data, however it nests."""
    if isinstance(data, dict):
        return [pair for key, value in data.items()
                for pair in _field_messages(value, f"{path}.{key}" if path else str(key))]
    if isinstance(data, list):
        if all(not isinstance(item, (dict, list)) for item in data):
            return [(path, str(item)) for item in data]
        return [pair for index, item in enumerate(data)
                for pair in _field_messages(item, f"{path}.{index}" if path else str(index))]
    return [(path, str(data))]


def error_body(data: Any) -> dict[str, Any]:
    """The documented refusal shape (ErrorSerializer): a ``detail`` sentence, plus ``errors`` by
    field when the refusal is about fields (DRF gives those as ``{field: [message]}`` or a list)."""
    if isinstance(data, dict) and set(data) == {"detail"} and isinstance(data["detail"], str):
        return data
    errors: dict[str, list[str]] = {}
    for path, message in _field_messages(data):
        errors.setdefault(path or api_settings.NON_FIELD_ERRORS_KEY, []).append(message)
    detail = "; ".join(message if path == api_settings.NON_FIELD_ERRORS_KEY else f"{path}: {message}"
                       for path, messages in errors.items() for message in messages)
    return {"detail": f"Invalid input: {detail}" if detail else "Invalid input.", "errors": errors}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Any:
    """DRF's handler, plus Django's own refusal of a too-large body as a 413 (not a 500); every
    refusal's body has the documented shape (ErrorSerializer)."""
    from django.core.exceptions import RequestDataTooBig
    from rest_framework.views import exception_handler as drf_handler

    if isinstance(exc, RequestDataTooBig):
        exc = TooLarge(f"the request body is over {settings.SCALEENV_API_MAX_BODY_BYTES} bytes "
                       "(SCALEENV_API_MAX_BODY_BYTES)")
    response = drf_handler(exc, context)
    if response is not None:
        response.data = error_body(response.data)
    return response


def not_found(request: Any, exception: Exception | None = None) -> Any:
    """Django's 404 for paths no route matches: JSON under /api/ (the documented error shape), the
    site's page elsewhere."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
