"""Random schema-valid tool calls (Django-free): what an exploring agent does inside a task's
subgraph. Every call must return a meaningful observation — a success or an anticipated
rejection — never an ``unexpected_failure`` (the paper's interaction completeness)."""

from __future__ import annotations

import datetime as dt
import random
import string
from typing import Any

WORDS = ("blue", "north", "quiet", "garden", "river", "summit", "coffee", "lamp", "review", "tuesday", "urgent")


def random_value(schema: dict[str, Any], rng: random.Random, keys: list[str]) -> Any:
    """A value the JSON Schema accepts (formats included); ids are existing keys most of the time."""
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type")
    if kind == "integer":
        low = int(schema.get("minimum", -5))
        high = int(schema.get("maximum", low + 200))
        return rng.randint(low, high)
    if kind == "number":
        low = float(schema.get("minimum", -50.0))
        high = float(schema.get("maximum", low + 5000.0))
        return round(rng.uniform(low, high), rng.choice((0, 2)))
    if kind == "boolean":
        return rng.random() < 0.5
    if schema.get("format") == "date":
        return (dt.date(2026, 3, 2) + dt.timedelta(days=rng.randint(-400, 400))).isoformat()
    if schema.get("format") == "date-time":
        moment = dt.datetime(2026, 3, 2, 9, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=rng.randint(-10**5, 10**5))
        zone = rng.choice(("Z", "+00:00", "+02:00", "-05:00"))
        text = moment.strftime("%Y-%m-%dT%H:%M:%S")
        return text + zone
    if keys and rng.random() < 0.75:
        return rng.choice(keys)
    size = max(int(schema.get("minLength", 1)), rng.randint(1, 3))
    return " ".join(rng.choice(WORDS) for _ in range(size)) if rng.random() < 0.8 else "".join(
        rng.choice(string.ascii_letters) for _ in range(size * 4))


def random_arguments(parameters: dict[str, Any], state: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Arguments valid for ``parameters``: every required one, and each optional one half the time."""
    keys = sorted(str(pk) for rows in state.values() for pk in rows)
    required = set(parameters.get("required", []))
    args = {}
    for name, schema in parameters.get("properties", {}).items():
        if name in required or rng.random() < 0.5:
            args[name] = random_value(schema, rng, keys if name.endswith("_id") else [])
    return args
