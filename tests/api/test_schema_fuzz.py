"""Schemathesis fuzzes every operation of the served OpenAPI schema (issue 8, item 3), in-process
through the WSGI app, with real rows in the database and the tokens of an agent, a curator and an admin.

Every answer must be documented (status code and content type), match its documented schema and
carry no property the schema does not name; no request may end in a server error. Path ids are
often real ones (so details, steps and session calls do real work, not only 404s); session calls
often carry a real tool call or end the conversation. Both positive (schema-valid) and negative
(schema-violating) data are sent. Generation is derandomized: a failure reproduces on every run."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from environments import batches
from environments.models import Batch, Dependency, Domain, Tool, ToolTest
from tasks import services
from tasks.models import Run, Task
from tests.conftest import account

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = 25  # per operation and generation mode
CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.status_code_conformance,
          schemathesis.checks.content_type_conformance, schemathesis.checks.response_schema_conformance]
OPERATIONS = {  # every operation the schema documents (a new one must be added here, and is then fuzzed)
    "GET /api/batches/", "GET /api/batches/{id}/", "GET /api/dependencies/", "GET /api/dependencies/{id}/",
    "GET /api/domains/", "GET /api/domains/{slug}/", "GET /api/runs/", "GET /api/runs/{id}/",
    "GET /api/runs/{id}/steps/", "POST /api/sessions/", "GET /api/sessions/{id}/",
    "POST /api/sessions/{id}/tool-calls/", "POST /api/sessions/{id}/messages/", "POST /api/sessions/{id}/finish/",
    "GET /api/tasks/", "GET /api/tasks/{id}/", "GET /api/tool-tests/", "GET /api/tool-tests/{id}/",
    "GET /api/tools/", "GET /api/tools/{id}/"}
SESSION_CALLS = ("/api/sessions/{id}/", "/api/sessions/{id}/tool-calls/", "/api/sessions/{id}/messages/",
                 "/api/sessions/{id}/finish/")
# What each role must have been answered with a 2xx at least once (the fuzzing reached real work).
MUST_SUCCEED = {
    "Agent": {"GET /api/domains/", "GET /api/domains/{slug}/", "GET /api/tools/", "GET /api/tools/{id}/",
              "POST /api/sessions/", "GET /api/sessions/{id}/", "POST /api/sessions/{id}/tool-calls/",
              "POST /api/sessions/{id}/messages/", "POST /api/sessions/{id}/finish/"},
    "Curator": {label for label in OPERATIONS if "/sessions/" not in label},
    "Admin": OPERATIONS,  # reads everything and plays sessions (and sees a score's full breakdown)
}
MESSAGES = ["Hello! How can I help you today?", "Could you tell me more, please?", "Done. ###STOP###"]


@pytest.fixture
def world(settings) -> None:
    """A synthesized domain with verified tasks and oracle rollout runs; throttle counts of this test
    alone (the default cache is a file shared by every process, and user ids repeat between runs)."""
    from tests.tasks.conftest import stored_tasks

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "schema-fuzz"}}

    stored_tasks(seed=13, per_domain=2)
    rollout, _ = services.start_rollout_batch(agent="oracle", which="all", trials=1)
    for item in rollout.items.all():
        batches.run_item(item.pk, worker="test")


def token(role: str) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.get_or_create(user=account(role, f"fuzz-{role.lower()}"))[0].key


def open_sessions(key: str, tasks: list[Task], count: int) -> list[int]:
    """``count`` sessions of the token's account (none when its role may not play)."""
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Token {key}")
    started = [client.post("/api/sessions/", json.dumps({"task": tasks[i % len(tasks)].pk}),
                           content_type="application/json") for i in range(count)]
    return [answer.json()["session"] for answer in started if answer.status_code == 201]


def real_values(key: str, tasks: list[Task]) -> dict[str, list[Any]]:
    """Existing path values for each operation; each session call gets sessions of its own (finishing
    or ending the conversation closes a session, which would leave the other calls only 409s)."""
    runs = list(Run.objects.values_list("pk", flat=True))
    return {"/api/batches/{id}/": list(Batch.objects.values_list("pk", flat=True)),
            "/api/dependencies/{id}/": list(Dependency.objects.values_list("pk", flat=True)[:20]),
            "/api/domains/{slug}/": list(Domain.objects.values_list("slug", flat=True)),
            "/api/runs/{id}/": runs, "/api/runs/{id}/steps/": runs,
            "/api/tasks/{id}/": [task.pk for task in tasks],
            "/api/tool-tests/{id}/": list(ToolTest.objects.values_list("pk", flat=True)[:20]),
            "/api/tools/{id}/": list(Tool.objects.values_list("pk", flat=True)[:20]),
            **{path: open_sessions(key, tasks, 3) for path in SESSION_CALLS}}


def undocumented_properties(raw: dict[str, Any], schema: Any, value: Any, where: str = "body") -> list[str]:
    """Where ``value`` has object properties its (OpenAPI 3.0) schema does not name: JSON Schema lets
    any extra property through unless told otherwise, so response_schema_conformance misses them."""

    def resolve(node: Any) -> dict[str, Any]:
        while isinstance(node, dict) and "$ref" in node:
            node = raw["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
        return node if isinstance(node, dict) else {}

    top = resolve(schema)
    members = [top] + [resolve(m) for key in ("allOf", "oneOf", "anyOf") for m in top.get(key, [])]
    problems: list[str] = []
    if isinstance(value, dict):
        properties = {name: sub for m in reversed(members) for name, sub in m.get("properties", {}).items()}
        extra = next((m["additionalProperties"] for m in members if m.get("additionalProperties") not in
                      (None, False)), None)
        closed = bool(properties) and extra is None
        for name, item in value.items():
            if name in properties:
                problems += undocumented_properties(raw, properties[name], item, f"{where}.{name}")
            elif closed:
                problems.append(f"{where}.{name}")
            elif isinstance(extra, dict):
                problems += undocumented_properties(raw, extra, item, f"{where}.{name}")
    elif isinstance(value, list):
        items = next((m["items"] for m in members if "items" in m), None)
        for index, item in enumerate(value if items is not None else []):
            problems += undocumented_properties(raw, items, item, f"{where}[{index}]")
    return problems


class Fuzzer:
    """Fuzzes the operations of a schema with one role's token, steering towards real work."""

    def __init__(self, schema: Any, role: str) -> None:
        self.schema, self.role, self.key = schema, role, token(role)
        self.tasks = list(Task.objects.filter(status="verified").order_by("pk"))
        assert self.tasks, "the world has no verified task"
        self.real = real_values(self.key, self.tasks)
        self.gold_calls = [{"name": step["tool"], "arguments": step["args"]}
                           for task in self.tasks for step in task.gold_chain[:1]]
        self.failures: dict[str, str] = {}  # "role operation (mode)" -> what failed
        self.seen: dict[str, Counter] = {}  # operation -> status codes answered

    def run(self) -> None:
        operations = [result.ok() for result in self.schema.get_all_operations()]
        assert {operation.label for operation in operations} == OPERATIONS
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                started = time.monotonic()
                try:
                    self.fuzz(operation, mode)
                except Unsatisfiable:
                    if mode is GenerationMode.POSITIVE:
                        raise
                    # nothing violates the schemas of this operation's inputs (a free-text slug): no negative data
                except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - report every failing operation
                    self.failures[f"{self.role} {operation.label} ({mode.value})"] = f"{type(exc).__name__}: {exc}"
                print(f"{time.monotonic() - started:6.2f}s {operation.label} ({mode.value})")

    def fuzz(self, operation: Any, mode: GenerationMode) -> None:
        @hypothesis_settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                             phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
        def check(case: Any, data: Any) -> None:
            self.steer(case, data, operation.path, mode)
            response = case.call_and_validate(headers={"Authorization": f"Token {self.key}"}, checks=CHECKS)
            self.seen.setdefault(operation.label, Counter())[response.status_code] += 1
            documented = operation.definition.raw["responses"][str(response.status_code)]
            body = json.loads(response.content) if response.content else None
            extra = undocumented_properties(self.schema.raw_schema,
                                            documented["content"]["application/json"]["schema"], body)
            assert not extra, (f"{case.method} {case.formatted_path} answered {response.status_code} with "
                               f"undocumented properties {extra}: {response.text[:500]}")

        check()

    def steer(self, case: Any, data: Any, path: str, mode: GenerationMode) -> None:
        """Often a real path id; in positive mode, often a body that does real work."""
        ids = self.real.get(path)
        if ids and data.draw(st.integers(0, 3), label="a real path id") > 0:
            name = "slug" if "{slug}" in path else "id"
            case.path_parameters = {**(case.path_parameters or {}), name: data.draw(st.sampled_from(ids))}
        if mode is GenerationMode.POSITIVE and data.draw(st.booleans(), label="a meaningful body"):
            if path == "/api/sessions/":
                case.body = {"task": data.draw(st.sampled_from([task.pk for task in self.tasks]))}
            elif path.endswith("/tool-calls/"):
                case.body = data.draw(st.sampled_from(self.gold_calls))
            elif path.endswith("/messages/"):
                case.body = {"content": data.draw(st.sampled_from(MESSAGES))}


@pytest.mark.parametrize("role", ["Agent", "Curator", "Admin"])
def test_every_operation_answers_as_documented(world, role):
    from scaleenv_site.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application,
                                            headers={"Authorization": f"Token {token(role)}"})
    fuzzer = Fuzzer(schema, role)
    fuzzer.run()
    for label, counts in sorted(fuzzer.seen.items()):  # shown with a failure (or -s)
        print(f"{role:8} {label:40} {dict(sorted(counts.items()))}")
    assert not fuzzer.failures, "\n\n".join(f"{label}:\n{text}" for label, text in fuzzer.failures.items())
    reached = {label for label, counts in fuzzer.seen.items() if any(200 <= code < 300 for code in counts)}
    assert MUST_SUCCEED[role] <= reached, (MUST_SUCCEED[role] - reached, fuzzer.seen)
    assert all(code < 500 for counts in fuzzer.seen.values() for code in counts)
