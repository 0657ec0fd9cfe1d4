"""Task instantiation by graph expansion (Django-free)."""

from __future__ import annotations

from typing import Any

from .pipeline import (COMPLEXITY, GateSettings, InstantiationError, Instantiator, TaskDraft, domain_bundle,
                       task_figures)
from .view import DomainView, EdgeView, TableView, ToolView

__all__ = ["COMPLEXITY", "DomainView", "EdgeView", "GateSettings", "InstantiationError", "Instantiator", "TableView",
           "TaskDraft", "ToolView", "domain_bundle", "task_figures", "view_from_result"]


def view_from_result(result: Any) -> DomainView:
    """A view of an in-memory synthesis result (verified tools only)."""
    spec = result.spec
    positives: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for case in result.tests:
        if case.kind == "positive" and case.outcome == "success" and case.tool not in positives:
            positives[case.tool] = (case.patch, case.args)
    tools = {t.name: ToolView(name=t.name, template=t.template, kind=t.kind, parameters=t.parameters,
                              output_fields=t.output_fields, contract=t.contract, reads=t.reads, writes=t.writes,
                              code=t.code, raises=t.raise_types(), positive=positives.get(t.name),
                              description=t.description)
             for t in spec.tools if result.tool_status[t.name]["status"] == "verified"}
    edges = [EdgeView(e.src, e.dst, e.kinds, e.evidence, e.witnessed) for e in result.edges]
    tables = {t.name: {"label": t.label, "pk": t.pk, "role": t.role, "machine": t.machine} for t in spec.tables}
    policy = getattr(spec, "policy", "") or ""
    return DomainView(slug=spec.slug, name=spec.name, sector=spec.sector, schema=spec.schema(), fixture=spec.fixture,
                      clock=spec.clock, id_seed=spec.id_seed, tools=tools, edges=edges, tables=tables, policy=policy,
                      policy_version=policy_version(policy), description=spec.description)


def policy_version(policy: str) -> str:
    import hashlib

    return hashlib.sha256(policy.encode()).hexdigest()[:12] if policy else ""
