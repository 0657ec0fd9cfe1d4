"""The offline, deterministic ``procedural`` synthesis backend."""

from __future__ import annotations

import random
import re
from typing import Any

from ..spec import DomainSpec, TableSpec, TestCase, ToolSpec
from ..testing import generate_tests
from . import generator, policy
from .codegen import render_tool

# Mutations used by fault injection (to exercise the test-and-repair loop at scale).
_FAULTS = (
    (re.compile(r" >= "), " > "),
    (re.compile(r"\(\(([^()]+) - "), r"((\1 + "),
    (re.compile(r"'confirmed'"), "'pending'"),
    (re.compile(r"raise KeyError\("), "return ("),
    (re.compile(r"'cancelled'"), "'canceled'"),
    (re.compile(r"round\((.+), 2\)"), r"round(\1, 0)"),
)


def inject_fault(code: str, rng: random.Random) -> str | None:
    options = [(p, r) for p, r in _FAULTS if p.search(code)]
    if not options:
        return None
    pattern, replacement = rng.choice(options)
    return pattern.sub(replacement, code, count=1)


class ProceduralBackend:
    name = "procedural"

    def __init__(self, fault_rate: float = 0.0) -> None:
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError("fault_rate must be between 0 and 1")
        self.fault_rate = fault_rate

    def draft_domain(self, seed: int) -> dict[str, Any]:
        return generator.draft_domain(seed)

    def design_schema(self, draft: dict[str, Any]) -> list[TableSpec]:
        return generator.design_schema(draft)

    def design_tools(self, draft: dict[str, Any], tables: list[TableSpec]) -> tuple[list[ToolSpec], dict[str, Any]]:
        return generator.design_tools(draft, tables)

    def describe_domain(self, draft: dict[str, Any], tables: list[TableSpec], tools: list[ToolSpec],
                        rules: dict[str, Any]) -> str:
        return generator.describe_domain(draft, tables, tools, rules)

    def write_policy(self, domain: DomainSpec, rules: dict[str, Any]) -> str:
        return policy.write_policy(domain, rules)

    def write_code(self, domain: DomainSpec, tool: ToolSpec) -> str:
        code = render_tool(tool.name, tool.description, tool.contract)
        if self.fault_rate:
            rng = random.Random(f"fault:{domain.seed}:{tool.name}")
            if rng.random() < self.fault_rate:
                code = inject_fault(code, rng) or code
        return code

    def build_fixture(self, domain: DomainSpec) -> dict[str, Any]:
        return generator.build_fixture(domain.tables, domain.seed)

    def write_tests(self, domain: DomainSpec, tool: ToolSpec) -> list[TestCase]:
        return generate_tests(domain, tool, domain.fixture)

    def repair(self, domain: DomainSpec, tool: ToolSpec, failures: list[TestCase]) -> str | None:
        # The procedural backend can only regenerate code from the contract; that fixes code that
        # drifted from its specification, and nothing else.
        fresh = render_tool(tool.name, tool.description, tool.contract)
        return fresh if fresh != tool.code else None
