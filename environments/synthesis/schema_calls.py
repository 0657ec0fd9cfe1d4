"""Random calls that are valid per a tool's JSON Schema, to show that no such call breaks a tool.

A caller (an agent, a user simulator) only knows the schema: enums, integer and number ranges,
``date`` and ``date-time`` formats, required parameters. Any call the schema allows must end as a
``success`` or an ``anticipated_rejection``, never as an ``unexpected_failure`` (a crash, or a
write the state schema rejects). :func:`random_args` draws such calls, mixing plausible values
(ids that exist, the fixture's own values) with odd but schema-valid ones (far-away dates, time
zone offsets, empty filters, long text); :func:`check_schema_valid` proves each one against the
schema with strict ``date`` / ``date-time`` format checks; :func:`run_random_calls` runs them in
the sandbox, in short sequences on the domain's state, and counts the outcomes.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import string
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from environments.runtime.executor import Sandbox

# RFC 3339 (the JSON Schema ``date`` and ``date-time`` formats), checked strictly: the default
# jsonschema format checker accepts any string as a date-time when rfc3339-validator is absent.
_RFC3339_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_RFC3339_DATE_TIME = re.compile(r"(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})(\.\d+)?"
                                r"(?P<zone>[Zz]|[+-](?P<oh>\d{2}):(?P<om>\d{2}))")


def is_rfc3339_date(value: Any) -> bool:
    if not isinstance(value, str) or not _RFC3339_DATE.fullmatch(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_rfc3339_date_time(value: Any) -> bool:
    m = _RFC3339_DATE_TIME.fullmatch(value) if isinstance(value, str) else None
    if m is None or not is_rfc3339_date(m["date"]):
        return False
    if int(m["h"]) > 23 or int(m["m"]) > 59 or int(m["s"]) > 60:  # RFC 3339 allows a leap second
        return False
    return m["oh"] is None or (int(m["oh"]) <= 23 and int(m["om"]) <= 59)


def format_checker():  # -> jsonschema.FormatChecker
    import jsonschema

    checker = jsonschema.FormatChecker()
    checker.checks("date")(is_rfc3339_date)
    checker.checks("date-time")(is_rfc3339_date_time)
    return checker


def check_schema_valid(schema: dict[str, Any], args: dict[str, Any]) -> list[str]:
    """Problems of ``args`` against a tool's parameter schema (empty when valid), formats included."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema, format_checker=format_checker())
    return [e.message for e in validator.iter_errors(args)]


# ---------------------------------------------------------------------------------------------
# Values


def _random_date(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.6:  # near the domain's clock
        day = dt.date(2026, 3, 2) + dt.timedelta(days=rng.randint(-400, 400))
    elif roll < 0.9:
        day = dt.date(rng.randint(1900, 2100), 1, 1) + dt.timedelta(days=rng.randint(0, 364))
    else:  # the edges of what a four-digit year allows
        day = rng.choice([dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(2024, 2, 29), dt.date(1000, 6, 15)])
    return day.isoformat()


def _random_date_time(rng: random.Random) -> str:
    day = _random_date(rng)
    text = f"{day}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    if rng.random() < 0.2:
        text += "." + "".join(rng.choice(string.digits) for _ in range(rng.randint(1, 9)))
    roll = rng.random()
    if roll < 0.45:
        text += "Z"
    elif roll < 0.5:
        text = text.lower() + "z"
    else:
        sign = rng.choice("+-")
        text += f"{sign}{rng.randint(0, 23):02d}:{rng.choice([0, 15, 30, 45, 59]):02d}"
    return text


def _random_text(rng: random.Random, min_length: int) -> str:
    roll = rng.random()
    if roll < 0.1 and not min_length:
        return ""
    if roll < 0.2:
        return " " * max(1, min_length)  # valid for the schema, refused as empty by the tools
    if roll < 0.3:
        return "".join(rng.choice(string.printable) for _ in range(rng.randint(200, 2000)))
    if roll < 0.35:
        return "tomorrow at 9"
    words = ["blue", "Lisbon", "urgent", "ñandú", "日本", "O'Brien", "a@b.c", "42", "null", "—", "Müller"]
    return " ".join(rng.choice(words) for _ in range(rng.randint(1, 4)))


def _random_number(schema: dict[str, Any], rng: random.Random, integer: bool) -> float | int:
    low = schema.get("minimum")
    high = schema.get("maximum")
    roll = rng.random()
    if integer:
        lo = int(low) if low is not None else -1000
        hi = int(high) if high is not None else max(lo, 0) + 1000
        if roll < 0.3 and low is not None:
            return lo
        if roll < 0.4 and high is not None:
            return hi
        if roll < 0.5:
            return rng.randint(lo, max(lo, min(hi, lo + 5)))
        return rng.randint(lo, hi) if roll < 0.95 else (lo if high is not None else 10 ** 12)
    lo = float(low) if low is not None else -1e4
    hi = float(high) if high is not None else max(lo, 0.0) + 1e4
    if roll < 0.25 and low is not None:
        return low
    if roll < 0.35:
        return round(rng.uniform(lo, min(hi, lo + 100)), 2)
    if roll < 0.45:
        return rng.randint(int(max(lo, 0)), int(max(lo, 0)) + 50)  # whole numbers are numbers too
    return rng.uniform(lo, hi) if roll < 0.97 else 1e15


@dataclass
class Pools:
    """Values seen in the domain's state: ids per table and values per column name."""

    ids: dict[str, list[str]] = field(default_factory=dict)
    values: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Pools:
        pools = cls()
        for table, rows in state.items():
            pools.ids[table] = sorted(rows)
            for row in rows.values():
                for col, value in row.items():
                    if isinstance(value, str) and value not in pools.values.get(col, []):
                        pools.values.setdefault(col, []).append(value)
        return pools


def random_value(name: str, schema: dict[str, Any], rng: random.Random, pools: Pools,
                 key_table: str | None = None) -> Any:
    """A value valid per ``schema``; for ids and known columns, often one that exists in the state."""
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type")
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "integer":
        return _random_number(schema, rng, integer=True)
    if kind == "number":
        return _random_number(schema, rng, integer=False)
    fmt = schema.get("format")
    if fmt == "date":
        return _random_date(rng)
    if fmt == "date-time":
        known = pools.values.get(name, [])
        return rng.choice(known) if known and rng.random() < 0.3 else _random_date_time(rng)
    min_length = int(schema.get("minLength", 0))
    if key_table is not None and pools.ids.get(key_table) and rng.random() < 0.85:
        return rng.choice(pools.ids[key_table])
    known = [v for v in pools.values.get(name.removesuffix("_contains"), []) if len(v) >= min_length]
    if known and rng.random() < 0.6:
        value = rng.choice(known)
        return value[: rng.randint(1, len(value))] if name.endswith("_contains") and value else value
    text = _random_text(rng, min_length)
    return text if len(text) >= min_length else text + "x" * (min_length - len(text))


def random_args(tool: dict[str, Any], rng: random.Random, pools: Pools) -> dict[str, Any]:
    """Schema-valid arguments for ``tool`` (``{"parameters", "contract"}``)."""
    schema = tool["parameters"]
    subject = (tool.get("contract") or {}).get("subject") or {}
    keys = dict(subject.get("keys") or {})
    for param in subject.get("filters") or {}:
        if param.endswith("_id"):
            keys.setdefault(param, None)
    required = set(schema.get("required", []))
    args: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        if name in required or rng.random() < 0.5:
            table = keys.get(name)
            if table is None and name.endswith("_id"):  # a filter on a foreign key: ids of the table it names
                table = next((t for t in pools.ids if t.startswith(name[:-3])), None)
            args[name] = random_value(name, prop, rng, pools, table)
    return args


# ---------------------------------------------------------------------------------------------
# Running


@dataclass
class CallReport:
    calls: int = 0
    outcomes: Counter = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)  # the unexpected ones, with their call
    invalid_args: int = 0  # drawn arguments the schema rejected (a bug of this module; must stay 0)

    def merge(self, other: CallReport) -> None:
        self.calls += other.calls
        self.outcomes.update(other.outcomes)
        self.failures.extend(other.failures)
        self.invalid_args += other.invalid_args


def run_random_calls(sandbox: Sandbox, tools: list[dict[str, Any]], state: dict[str, Any], calls: int, seed: int,
                     sequence_length: int = 20) -> CallReport:
    """Run ``calls`` random schema-valid calls on ``tools`` (``{"name", "parameters", "contract"}``),
    in sequences of ``sequence_length`` from ``state`` (so writes build on each other), and count
    the outcomes."""
    rng = random.Random(seed)
    report = CallReport()
    pools = Pools.from_state(state)
    while report.calls < calls:
        batch = []
        for _ in range(min(sequence_length, calls - report.calls - len(batch))):
            tool = rng.choice(tools)
            args = random_args(tool, rng, pools)
            if check_schema_valid(tool["parameters"], args):
                report.invalid_args += 1
                continue
            batch.append({"tool": tool["name"], "args": args})
        if not batch:
            continue
        run = sandbox.run_sequence(batch, state=state, stop_on_failure=False, state_hash=False, values=False)
        for call, result in zip(batch, run["results"]):
            report.calls += 1
            report.outcomes[result["outcome"]] += 1
            if result["outcome"] == "unexpected_failure":
                report.failures.append({**call, "error_type": result.get("error_type"), "error": result.get("error")})
    return report
