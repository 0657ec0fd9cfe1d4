"""Template filters for the review UI: JSON as a curator reads it, status codes as words, identifiers
that may break after an underscore, durations in the unit that suits them. All output is escaped."""

from __future__ import annotations

import json
import re
from typing import Any

from django import template
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# Codes users see as words; anything else has its underscores turned into spaces.
LABELS = {
    "in_review": "in review", "needs_changes": "needs changes", "agent_stop": "agent stopped",
    "user_stop": "user stopped", "max_steps": "step limit reached", "too_many_errors": "too many errors",
    "agent_error": "agent error", "user_error": "user simulator error", "infrastructure_error": "infrastructure error",
}


@register.filter
def tojson(value: Any, indent: int | None = 2) -> str:
    """``value`` as indented JSON text (for a <pre>; autoescaping still applies)."""
    return json.dumps(value, indent=indent or None, ensure_ascii=False, default=str)


@register.filter
def label(code: Any) -> str:
    """A status or termination code as words: ``needs_changes`` → "needs changes"."""
    text = str(code or "")
    return LABELS.get(text, text.replace("_", " "))


@register.filter(needs_autoescape=True)
def breakable(value: Any, autoescape: bool = True) -> SafeString:
    """An identifier (``ask_total_owed:rent_invoices``) that may wrap after each ``_``, ``:``, ``+``
    or ``/`` (a <wbr> there) instead of in the middle of a word. Each piece is escaped."""
    escape = conditional_escape if autoescape else (lambda s: s)
    pieces = re.split(r"(?<=[_:+/])", str(value if value is not None else ""))
    return mark_safe("<wbr>".join(str(escape(p)) for p in pieces if p))


@register.filter
def duration(seconds: Any) -> str:
    """Seconds as "840 ms" below one second, "2.41 s" from there on; "—" when unknown."""
    if seconds is None or seconds == "":
        return "—"
    value = float(seconds)
    if value < 1:
        return f"{value * 1000:.0f} ms" if value >= 0.001 or value == 0 else f"{value * 1000:.2f} ms"
    return f"{value:.2f} s"


__all__ = ["tojson", "label", "breakable", "duration", "getlist"]


@register.filter
def getlist(querydict: Any, key: str) -> list[str]:
    """Every value of ``key`` in a QueryDict (the reasons a refused verdict had ticked)."""
    return querydict.getlist(key) if hasattr(querydict, "getlist") else []
