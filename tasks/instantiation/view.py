"""What task instantiation needs to know about a domain, as plain data (no Django)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx


@dataclass
class ToolView:
    name: str
    template: str
    kind: str
    parameters: dict[str, Any]
    output_fields: list[dict[str, str]]
    contract: dict[str, Any]
    reads: list[str]
    writes: list[str]
    code: str
    raises: list[str]
    positive: tuple[dict[str, Any], dict[str, Any]] | None = None  # (patch over the fixture, args)

    @property
    def mutates(self) -> bool:
        return bool(self.writes)

    @property
    def required(self) -> list[str]:
        return list(self.parameters.get("required", []))

    def what(self) -> str:
        """The entity the tool is about (from its first load), e.g. 'visit slot'."""
        for step in self.contract["steps"]:
            if step["op"] == "load":
                return step["what"]
        return self.name.split("_", 1)[-1].replace("_", " ")


@dataclass
class EdgeView:
    src: str
    dst: str
    kinds: list[str]
    evidence: dict[str, Any]
    witnessed: bool


@dataclass
class DomainView:
    slug: str
    name: str
    sector: str
    schema: dict[str, Any]
    fixture: dict[str, Any]
    clock: str
    id_seed: int
    tools: dict[str, ToolView]
    edges: list[EdgeView]
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {label, pk, role}

    def graph(self) -> nx.DiGraph:
        g = nx.DiGraph()
        g.add_nodes_from(self.tools)
        for e in self.edges:
            g.add_edge(e.src, e.dst, kinds=e.kinds, evidence=e.evidence, witnessed=e.witnessed)
        return g

    def data_flow(self, src: str, dst: str) -> list[dict[str, str]]:
        for e in self.edges:
            if e.src == src and e.dst == dst:
                return list(e.evidence.get("data_flow", []))
        return []

    def bundle_tools(self) -> dict[str, dict[str, Any]]:
        return {t.name: {"code": t.code, "raises": t.raises} for t in self.tools.values()}
