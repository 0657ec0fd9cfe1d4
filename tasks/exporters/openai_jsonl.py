"""The OpenAI fine-tuning JSONL format: one successful run per line as ``{"messages", "tools",
"parallel_tool_calls"}`` (Django-free).

OpenAI's validator refuses unknown top-level keys, so the provenance of each line (run, task,
content hash, reward, review status) goes to a sidecar file, line for line (docs/exports.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .jsonl import HashingWriter, RawJSON, dumps, encode_object

ROLES = ("system", "user", "assistant", "tool")
MESSAGE_KEYS = {"role", "content", "tool_calls", "tool_call_id", "name", "weight"}
EXAMPLE_KEYS = {"messages", "tools", "parallel_tool_calls"}
# The simulators' control tokens (τ²-bench's): never something to learn to say.
CONTROL_TOKEN = re.compile(r"###[A-Z][A-Z_-]*###")


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _arguments(value: Any) -> str:
    """Tool-call arguments as the JSON string OpenAI expects (our steps store a dict)."""
    if isinstance(value, str):
        json.loads(value)  # must already be JSON
        return value
    return json.dumps(value if value is not None else {}, default=str)


def clean_messages(messages: list[Mapping[str, Any]]) -> list[dict[str, Any]] | None:
    """A run's conversation made fit for training: control tokens stripped, empty turns dropped,
    tool-call arguments as JSON strings, only the keys OpenAI knows, and nothing after the last
    assistant turn (it teaches nothing). None when no assistant turn is left."""
    cleaned: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role not in ROLES:
            continue
        if role == "tool":
            cleaned.append({"role": "tool", "tool_call_id": str(message.get("tool_call_id") or ""),
                            "content": _text(message.get("content"))})
            continue
        content = CONTROL_TOKEN.sub("", _text(message.get("content"))).strip()
        calls = message.get("tool_calls") or []
        if role == "assistant" and calls:
            out: dict[str, Any] = {"role": "assistant", "content": content or None, "tool_calls": [
                {"id": str(c.get("id")), "type": "function",
                 "function": {"name": c["function"]["name"], "arguments": _arguments(c["function"].get("arguments"))}}
                for c in calls]}
        elif content:
            out = {"role": role, "content": content}
        else:
            continue
        if role == "assistant" and "weight" in message:
            out["weight"] = message["weight"]
        cleaned.append(out)
    last = max((i for i, m in enumerate(cleaned) if m["role"] == "assistant"), default=None)
    return cleaned[: last + 1] if last is not None else None


def example_problems(example: Mapping[str, Any]) -> list[str]:
    """What OpenAI's chat fine-tuning format checks would refuse in one example (empty: valid)."""
    problems = [f"unexpected top-level key {k!r}" for k in example if k not in EXAMPLE_KEYS]
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        return problems + ["no messages"]
    open_calls: set[str] = set()
    for i, m in enumerate(messages):
        role = m.get("role")
        if role not in ROLES:
            problems.append(f"message {i}: unknown role {role!r}")
        problems += [f"message {i}: unexpected key {k!r}" for k in m if k not in MESSAGE_KEYS]
        content = m.get("content")
        if role == "assistant" and m.get("tool_calls"):
            if content is not None and not isinstance(content, str):
                problems.append(f"message {i}: content must be a string or null")
            for call in m["tool_calls"]:
                fn = call.get("function") or {}
                if call.get("type") != "function" or not call.get("id") or not fn.get("name"):
                    problems.append(f"message {i}: a tool call needs id, type function and a name")
                args = fn.get("arguments")
                try:
                    if not isinstance(args, str) or not isinstance(json.loads(args), dict):
                        raise ValueError
                except ValueError:
                    problems.append(f"message {i}: tool call arguments must be a JSON object in a string")
                open_calls.add(str(call.get("id")))
        elif not isinstance(content, str):
            problems.append(f"message {i}: content must be a string")
        if role == "tool":
            if m.get("tool_call_id") not in open_calls:
                problems.append(f"message {i}: tool reply to an unknown call {m.get('tool_call_id')!r}")
        elif "tool_call_id" in m:
            problems.append(f"message {i}: tool_call_id on a {role} message")
    if not any(m.get("role") == "assistant" for m in messages):
        problems.append("no assistant message")
    tools = example.get("tools", [])
    if not isinstance(tools, list) or any(t.get("type") != "function" or "name" not in (t.get("function") or {})
                                          for t in tools):
        problems.append("tools must be a list of {type: function, function: {name, description, parameters}}")
    return problems


@dataclass
class OpenAIWriter:
    """Writes one training example per run to ``out`` and its provenance to ``metadata``."""

    out: HashingWriter
    metadata: HashingWriter
    skipped: int = 0

    def write(self, run: Mapping[str, Any], tools: RawJSON | list[dict[str, Any]]) -> bool:
        """``run``: id, task_id, content_hash, domain, agent, trial, reward, review_status, messages.
        Returns False (and counts it) for a run with no assistant turn to learn from."""
        messages = clean_messages(run["messages"] or [])
        if messages is None:
            self.skipped += 1
            return False
        self.out.write_line(encode_object([("messages", messages), ("tools", tools),
                                           ("parallel_tool_calls", False)]))
        self.metadata.write_line(encode_object([
            ("line", self.out.lines), ("run_id", run["id"]), ("task_id", run["task_id"]),
            ("content_hash", run["content_hash"]), ("domain", run["domain"]), ("agent", run["agent"]),
            ("trial", run["trial"]), ("reward", run["reward"]), ("review_status", run["review_status"])]))
        return True


def tools_fragment(tools: list[dict[str, Any]]) -> RawJSON:
    """A domain's tool list encoded once, for every example of that domain."""
    return RawJSON(dumps(tools))
