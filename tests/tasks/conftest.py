"""A tiny hand-made environment for mechanics tests; a synthesized domain and real tasks built on
it (through the Instantiator) for the rest."""

from __future__ import annotations

import copy

import pytest

from environments.runtime.executor import EnvironmentBundle, Sandbox, SandboxConfig
from tasks.instantiation import Instantiator, InstantiationError, domain_bundle, view_from_result
from tasks.spec import TaskSpec, build_task_spec
from tests.conftest import sandbox_mode, synthesized

NOTES_SCHEMA = {"tables": {"notes": {"pk": "note_id", "columns": {
    "note_id": {"type": "string", "policy": "exempt"},
    "body": {"type": "text", "policy": "semantic"},
    "stars": {"type": "integer", "policy": "exact"}}}}}
NOTES_CODE = '''
_hidden = []

def get_note(db, ctx, note_id):
    if note_id not in db["notes"]:
        raise KeyError(f"no note {note_id}")
    return dict(db["notes"][note_id])

def set_stars(db, ctx, note_id, stars):
    if note_id not in db["notes"]:
        raise KeyError(f"no note {note_id}")
    if not isinstance(stars, int) or not 1 <= stars <= 5:
        raise ValueError("stars must be 1 to 5")
    db["notes"][note_id]["stars"] = stars
    return dict(db["notes"][note_id])

def bump(db, ctx, note_id):
    _hidden.append(1)  # state hidden from the sandbox's reset: replays differ
    db["notes"][note_id]["stars"] = 1 + len(_hidden) % 5
    return dict(db["notes"][note_id])
'''
S0 = {"notes": {"n1": {"note_id": "n1", "body": "Lovely stay", "stars": 3},
                "n2": {"note_id": "n2", "body": "Too noisy", "stars": 2}}}
TOOLS = [{"type": "function", "function": {"name": n, "description": n, "parameters": {
    "type": "object", "properties": {"note_id": {"type": "string"}, "stars": {"type": "integer"}},
    "required": ["note_id"] + (["stars"] if n == "set_stars" else [])}}} for n in ("get_note", "set_stars", "bump")]


@pytest.fixture
def notes_sandbox():
    bundle = EnvironmentBundle(tools={n: {"code": NOTES_CODE} for n in ("get_note", "set_stars", "bump")},
                               schema=NOTES_SCHEMA, state=S0)
    with Sandbox(bundle, SandboxConfig(mode=sandbox_mode())) as sandbox:
        yield sandbox


@pytest.fixture
def notes_task() -> TaskSpec:
    s_gt = copy.deepcopy(S0)
    s_gt["notes"]["n1"]["stars"] = 5
    return TaskSpec(instruction="Hi. Please look up note n1. Then set its stars to 5. Thanks!",
                    user_profile={"name": "Ada"}, s0=copy.deepcopy(S0), s_gt=s_gt,
                    gold_chain=[{"tool": "get_note", "args": {"note_id": "n1"}},
                                {"tool": "set_stars", "args": {"note_id": {"$ref": [0, "note_id"]}, "stars": 5}}],
                    communicate_info=[], schema=NOTES_SCHEMA, tools=TOOLS[:2], subgraph=["get_note", "set_stars"],
                    positive_args={"get_note": {"note_id": "n2"}, "set_stars": {"note_id": "n2", "stars": 4}},
                    mutating=["set_stars", "bump"])


def stored_tasks(seed: int, per_domain: int, domain_seed: int = 1001) -> list:
    """Persist the synthesized test domain (or the domain of ``domain_seed``) and make ``per_domain``
    tasks for it through the job bodies."""
    from environments import batches
    from tasks import services
    from tasks.models import Task
    from tests.conftest import store_domain

    domain = store_domain(domain_seed)
    batch, _ = services.start_task_batch(domains=[domain], per_domain=per_domain, seed=seed)
    for item in batch.items.all():
        batches.run_item(item.pk, worker="test")
    return list(Task.objects.filter(domain=domain).order_by("seed"))


class Engine:
    """A synthesized domain (seed 1001), a live sandbox on it and an instantiator."""

    def __init__(self, seed: int = 1001) -> None:
        self.view = view_from_result(synthesized(seed))
        self.sandbox = Sandbox(domain_bundle(self.view), SandboxConfig(mode=sandbox_mode()))
        self.instantiator = Instantiator(self.view, self.sandbox)
        self._cache: dict[tuple[int, str], object] = {}

    def draft(self, seed: int, level: str = "medium"):
        key = (seed, level)
        if key not in self._cache:
            self._cache[key] = self.instantiator.build(seed, level)
        return copy.deepcopy(self._cache[key])

    def task(self, kind: str | None = None, intent: str | None = None, level: str = "medium", start: int = 0):
        """The first draft (from seed ``start`` on) of a kind and intent family, and its spec."""
        for seed in range(start, start + 400):
            try:
                draft = self.draft(seed, level)
            except InstantiationError:
                continue
            if (kind is None or draft.kind == kind) and (intent is None or draft.intent.split(":")[0] == intent):
                return draft, build_task_spec(self.view, draft)
        raise LookupError(f"no {kind} {intent} task in 400 seeds")

    def close(self) -> None:
        self.sandbox.close()


@pytest.fixture(scope="session")
def engine():
    made = Engine()
    yield made
    made.close()
