"""The synthesis backend interface: phase-1 stages that take and return plain data.

Two backends implement it: ``procedural`` (deterministic, seeded, offline) and ``llm`` (any
OpenAI-compatible endpoint; a later issue). Every stage is called by
:func:`environments.synthesis.pipeline.synthesize_domain`, which times it and records what it did.
"""

from __future__ import annotations

from typing import Any, Protocol

from .spec import DomainSpec, TableSpec, TestCase, ToolSpec


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

    def repair(self, domain: DomainSpec, tool: ToolSpec, failures: list[TestCase]) -> str | None:
        """New code for a failing tool, or None when the backend cannot fix it."""


def get_backend(name: str, **options: Any) -> SynthesisBackend:
    if name == "procedural":
        from .procedural.backend import ProceduralBackend

        return ProceduralBackend(**options)
    if name == "llm":
        raise ValueError("the llm backend is not available yet in this build; use --backend procedural")
    raise ValueError(f"unknown synthesis backend {name!r} (choose procedural or llm)")
