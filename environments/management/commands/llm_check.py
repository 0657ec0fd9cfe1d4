"""python manage.py llm_check [--role ROLE]"""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from environments import services
from environments.llm import LLMClient, LLMError, MemoryStore
from environments.llm.client import ROLES

ADD_TOOL = {"type": "function", "function": {
    "name": "add", "description": "Add two integers.",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                   "required": ["a", "b"]}}}


class Command(BaseCommand):
    help = ("Send two tiny requests to the configured LLM endpoint (SCALEENV_LLM_*) and print the model, the latency, "
            "and whether JSON output and tool calling work. Nothing is cached or stored.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--role", default="agent", choices=ROLES, help="whose model to check (per-role overrides)")

    def handle(self, *args: Any, **opts: Any) -> None:
        settings = services.llm_settings()
        try:
            client = LLMClient(settings, MemoryStore())
        except LLMError as exc:
            raise CommandError(str(exc)) from exc
        model = settings.model_for(opts["role"])
        self.stdout.write(f"endpoint  {settings.base_url}\nmodel     {model} (role {opts['role']})")
        nonce = f"{time.time_ns()}"  # a fresh request each time (the client's own cache is memory only)
        failures = 0

        started = time.perf_counter()
        try:
            answer = client.complete(role=opts["role"], stage="llm_check", json_output=True, max_tokens=60, messages=[
                {"role": "system", "content": "Answer with one JSON object only."},
                {"role": "user", "content": f'Reply with {{"ok": true, "sum": <2 + 3>}}. Check {nonce}.'}])
            value = json.loads(answer.content.strip().strip("`").removeprefix("json").strip())
            ok = isinstance(value, dict) and value.get("sum") == 5
            failures += not ok
            self.stdout.write(f"json      {'works' if ok else 'answered, but not as asked: ' + answer.content[:120]}"
                              f" ({(time.perf_counter() - started) * 1000:.0f} ms, {answer.prompt_tokens}+"
                              f"{answer.completion_tokens} tokens)")
        except (LLMError, ValueError) as exc:
            failures += 1
            self.stdout.write(f"json      fails: {getattr(exc, 'outcome', 'invalid_output')}: {exc}")

        started = time.perf_counter()
        try:
            answer = client.complete(role=opts["role"], stage="llm_check", tools=[ADD_TOOL], max_tokens=80, messages=[
                {"role": "user", "content": f"Use the add tool to add 2 and 3. ({nonce})"}])
            call = next((c for c in answer.tool_calls if c["name"] == "add"), None)
            ok = call is not None and json.loads(call["arguments"] or "{}") == {"a": 2, "b": 3}
            failures += not ok
            self.stdout.write(f"tools     {'work' if ok else 'no add(2, 3) call in the answer: ' + str(answer.tool_calls)[:160]}"
                              f" ({(time.perf_counter() - started) * 1000:.0f} ms)")
        except (LLMError, ValueError) as exc:
            failures += 1
            self.stdout.write(f"tools     fail: {getattr(exc, 'outcome', 'invalid_output')}: {exc}")
        if failures:
            raise CommandError(f"{failures} of 2 checks failed")
