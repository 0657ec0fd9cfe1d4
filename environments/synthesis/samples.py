"""Sample environments for measuring the runtime: a procedural domain as plain runtime data."""

from __future__ import annotations

import random
from typing import Any

from environments.runtime import statekit
from environments.runtime.executor import EnvironmentBundle

from .procedural import generator
from .procedural.codegen import render_tool
from .spec import DomainSpec
from .testing import find_positive


def bench_environment(seed: int = 0) -> tuple[EnvironmentBundle, tuple[str, dict[str, Any]], list[dict[str, Any]]]:
    """A procedural domain's bundle, one read call on it, and a ten-step chain of calls that run."""
    draft = generator.draft_domain(seed)
    tables = generator.design_schema(draft)
    tools, _rules = generator.design_tools(draft, tables)
    spec = DomainSpec(name=draft["name"], slug=draft["slug"], description="", keywords=[], sector=draft["sector"],
                      seed=seed, backend="procedural", tables=tables, tools=tools, id_seed=seed)
    spec.fixture = generator.build_fixture(tables, seed)
    for t in tools:
        t.code = render_tool(t.name, t.description, t.contract)
    rng = random.Random(seed)
    calls = []
    for t in sorted(tools, key=lambda t: (t.template not in ("get", "update", "create", "book", "pay"), t.name)):
        found = find_positive(spec, t, spec.fixture, rng)
        if found is not None and not statekit.diff_states(spec.fixture, found[0]):
            calls.append({"tool": t.name, "args": found[1], "template": t.template})
    read = next(c for c in calls if c["template"] == "get")
    writes = [c for c in calls if c["template"] != "get"]
    chain = [{"tool": c["tool"], "args": c["args"]} for c in (writes + calls)[:10]]
    bundle = EnvironmentBundle(tools={t.name: {"code": t.code, "raises": t.raise_types()} for t in tools},
                               schema=spec.schema(), state=spec.fixture, clock=spec.clock, id_seed=seed)
    return bundle, (read["tool"], read["args"]), chain
