"""The synthesis backend interface: phase-1 stages that take and return plain data.

Two backends implement it: ``procedural`` (deterministic, seeded, offline) and ``llm`` (any
OpenAI-compatible endpoint: the paper's method). Every stage is called by
:func:`environments.synthesis.pipeline.synthesize_domain`, which times it and records what it did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .spec import DomainSpec, TableSpec, TestCase, ToolSpec


class ToolStageError(Exception):
    """A stage failed for one tool only (its code or tests could not be written, or its repair
    failed): the tool fails with this message and the rest of the domain carries on."""


@dataclass
class Repair:
    """What a repair did: new code for the tool, and/or the names of test cases it corrected in place."""

    code: str | None = None
    fixed_tests: list[str] = field(default_factory=list)
    note: str = ""


class SynthesisBackend(Protocol):
    name: str

    def draft_domain(self, seed: int) -> dict[str, Any]:
        """Name, slug, description, keywords and sector of a new domain."""

    def design_schema(self, draft: dict[str, Any]) -> list[TableSpec]:
        """Tables with typed columns, keys, defaults and a reward policy per column."""

    def design_tools(self, draft: dict[str, Any], tables: list[TableSpec]) -> tuple[list[ToolSpec], dict[str, Any]]:
        """Tool schemas and contracts (pre/post-conditions, exceptions), plus the business rules chosen."""

    def describe_domain(self, draft: dict[str, Any], tables: list[TableSpec], tools: list[ToolSpec],
                        rules: dict[str, Any]) -> str:
        """The domain's description (1-3 sentences), from what its schema and tools really contain."""

    def write_policy(self, domain: DomainSpec, rules: dict[str, Any]) -> str:
        """The agent's policy (system prompt, Markdown), derived from the contracts and business rules."""

    def write_code(self, domain: DomainSpec, tool: ToolSpec) -> str:
        """Python source of one tool."""

    def build_fixture(self, domain: DomainSpec) -> dict[str, Any]:
        """A rich, schema-valid state that test instances are derived from."""

    def write_tests(self, domain: DomainSpec, tool: ToolSpec) -> list[TestCase]:
        """Test cases with expected outcomes derived from the tool's declarations."""

    def repair(self, domain: DomainSpec, tool: ToolSpec, failures: list[TestCase]) -> str | Repair | None:
        """New code for a failing tool (or a :class:`Repair`), or None when the backend cannot fix it."""

    # Optional hooks (the pipeline looks them up with getattr; the procedural backend has none):
    # classify_case(case, result) -> (outcome, message): judge a run against the case's expectation;
    # judge_edges(spec, tools, edges) -> edges: confirm, reject or add rule-based dependency candidates.


def get_backend(name: str, **options: Any) -> SynthesisBackend:
    if name == "procedural":
        from .procedural.backend import ProceduralBackend

        return ProceduralBackend(**options)
    if name == "llm":
        from .llm.backend import LLMBackend

        options.pop("fault_rate", None)  # procedural only
        return LLMBackend(**options)
    raise ValueError(f"unknown synthesis backend {name!r} (choose procedural or llm)")
