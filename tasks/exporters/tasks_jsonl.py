"""The tasks JSONL format: one self-contained line per task (Django-free).

A line holds everything a trainer or evaluator needs to rebuild the task without our database:
the user scenario, the domain's policy and tool schemas, s0, the gold calls, s_gt, the rubric (the
task's evaluation and the domain's column policies), what must be communicated, the audit result,
the review provenance and the content hash. Field reference: docs/exports.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from .jsonl import HashingWriter, dumps, encode_object, json_bytes

SCHEMA = "scaleenv.task/1"

# What the caller hands over per task (plain values). The JSON fields may be JSON text (str, or UTF-8
# bytes, as the database stores it: copied, never decoded) or decoded Python values.
TASK_FIELDS = ("id", "content_hash", "domain_id", "seed", "kind", "intent", "complexity", "status", "policy_version",
               "instruction", "review_status", "reviewed_at", "created_at")
TASK_JSON_FIELDS = ("user_scenario", "s0", "gold_calls", "gold_chain", "s_gt", "evaluation", "communicate_info",
                    "audit_flags")

# The keys of a line, in order (docs/exports.md describes each).
LINE_KEYS = ("schema", "id", "content_hash", "domain", "seed", "kind", "intent", "complexity", "policy_version",
             "user_scenario", "instruction", "policy", "tools", "s0", "gold_calls", "gold_chain", "s_gt", "rubric",
             "communicate_info", "audit", "review", "created_at")
_PREFIXES = tuple(("{" if i == 0 else ", ") + json.dumps(key) + ": " for i, key in enumerate(LINE_KEYS))
# A line is the task's head, the domain's shared middle (policy and tools) and the task's tail.
_HEAD_PREFIXES = tuple(p.encode() for p in _PREFIXES[:11])
_SHARED_PREFIXES = _PREFIXES[11:13]
_TAIL_PREFIXES = tuple(p.encode() for p in _PREFIXES[13:])
assert LINE_KEYS[11:13] == ("policy", "tools")
_SCHEMA_BYTES = json.dumps(SCHEMA).encode()


@dataclass(frozen=True)
class DomainInfo:
    """What every task of a domain shares: its policy, its tool schemas (OpenAI function format:
    every tool the agent is given) and its column policies ``{table: {column: exempt|exact|semantic}}``."""

    slug: str
    name: str
    policy: str
    policy_version: str
    tools: list[dict[str, Any]]
    column_policies: dict[str, dict[str, str]]


@dataclass(frozen=True)
class EncodedDomain:
    """A domain's parts encoded once (UTF-8) and spliced into each of its task lines: ``shared`` is
    the middle of a line (policy and tools, most of its bytes), handed to the file as it is."""

    domain: bytes
    shared: bytes
    column_policies: bytes

    @classmethod
    def of(cls, info: DomainInfo) -> EncodedDomain:
        shared = "".join(chain.from_iterable(zip(_SHARED_PREFIXES, (dumps(info.policy), dumps(info.tools)))))
        domain = encode_object([("slug", info.slug), ("name", info.name), ("policy_version", info.policy_version)])
        return cls(domain=domain.encode(), shared=shared.encode(), column_policies=dumps(info.column_policies).encode())


@dataclass
class TasksWriter:
    """Writes task lines to ``out``; ``domains`` maps a task's ``domain_id`` to its DomainInfo."""

    out: HashingWriter
    domains: Mapping[Any, DomainInfo]
    _encoded: dict[Any, EncodedDomain] = field(default_factory=dict)

    def write(self, task: Mapping[str, Any], events: list[dict[str, Any]] | None = None) -> None:
        key = task["domain_id"]
        domain = self._encoded.get(key)
        if domain is None:
            domain = self._encoded[key] = EncodedDomain.of(self.domains[key])
        head, tail = task_ends(task, domain, events or [])
        self.out.write_parts((head, domain.shared, tail))


def review_record(task: Mapping[str, Any], events: list[dict[str, Any]]) -> str:
    """The review provenance: the authoritative status, when it was decided, and every event
    (action, from, to, actor, time, reasons, comment)."""
    if not events:  # most tasks at scale: skip the general encoder
        return f'{{"status": {dumps(task["review_status"])}, "reviewed_at": {dumps(task.get("reviewed_at"))}, "events": []}}'
    return encode_object([
        ("status", task["review_status"]), ("reviewed_at", task.get("reviewed_at")),
        ("events", [{"action": e["action"], "from": e["from_status"], "to": e["to_status"], "actor": e.get("actor"),
                     "at": e["at"], "reasons": e.get("reasons") or [], "comment": e.get("comment") or ""}
                    for e in events])])


def _utf8(text: str) -> bytes:
    return text.encode("utf-8")


def task_ends(task: Mapping[str, Any], domain: EncodedDomain, events: list[dict[str, Any]]) -> tuple[bytes, bytes]:
    """The task's own parts of its line (UTF-8), before and after the domain's shared middle. Built
    from pre-encoded keys: the big values (states) are copied once, into the line."""
    head = (
        _SCHEMA_BYTES,
        _utf8(dumps(task["id"])),
        _utf8(dumps(task["content_hash"])),
        domain.domain,
        _utf8(dumps(task["seed"])),
        _utf8(dumps(task["kind"])),
        _utf8(dumps(task["intent"])),
        _utf8(dumps(task["complexity"])),
        _utf8(dumps(task["policy_version"])),
        json_bytes(task["user_scenario"]),
        _utf8(dumps(task["instruction"])),
    )
    tail = (
        json_bytes(task["s0"]),
        json_bytes(task["gold_calls"]),
        json_bytes(task["gold_chain"]),
        json_bytes(task["s_gt"]),
        b'{"evaluation": ' + json_bytes(task["evaluation"]) + b', "column_policies": ' + domain.column_policies + b"}",
        json_bytes(task["communicate_info"]),
        b'{"status": ' + _utf8(dumps(task["status"])) + b', "flags": ' + json_bytes(task["audit_flags"]) + b"}",
        _utf8(review_record(task, events)),
        _utf8(dumps(task.get("created_at"))),
    )
    return (b"".join(chain.from_iterable(zip(_HEAD_PREFIXES, head))),
            b"".join(chain.from_iterable(zip(_TAIL_PREFIXES, tail))) + b"}")


def task_line(task: Mapping[str, Any], domain: EncodedDomain, events: list[dict[str, Any]]) -> str:
    """One task as one line of JSON (no newline)."""
    head, tail = task_ends(task, domain, events)
    return (head + domain.shared + tail).decode("utf-8")
