"""One typed function per phase-1 LLM role: a versioned prompt in, a validated pydantic model out.

Each function takes the client and plain data, and raises :class:`environments.llm.LLMError` when
the role gives no usable answer (the caller decides what that costs: a tool, or the domain).
"""

from __future__ import annotations

from typing import Any

from environments.llm import LLMClient, LLMError
from environments.llm.prompts import load

from . import models as M


def _ask(client: LLMClient, role: str, stage: str, variables: dict[str, Any], schema: type[M.BaseModel],
         max_tokens: int | None = None) -> Any:
    try:
        return client.structured(role=role, stage=stage, prompt=load(role), variables=variables, schema=schema,
                                 max_tokens=max_tokens)
    except LLMError as exc:
        message = str(exc)
        if not message.startswith(role):
            message = f"{role}: {message}"
        raise LLMError(exc.outcome, message) from exc


def propose_domains(client: LLMClient, *, count: int, existing: list[str], name: str = "",
                    description: str = "") -> list[M.DomainProposal]:
    mode = "single" if name else "list"
    answer = _ask(client, "domain_proposer", "domain", {"mode": mode, "count": 1 if name else count, "name": name,
                                                         "description": description, "existing": sorted(existing)},
                  M.DomainProposals)
    taken = {e.strip().lower() for e in existing}
    fresh = [d for d in answer.domains if d.name.strip().lower() not in taken]
    if name:
        if not answer.domains:
            raise LLMError("invalid_output", "domain_proposer: no domain in the answer")
        first = answer.domains[0]
        return [first.model_copy(update={"description": description or first.description})]
    if len(fresh) < count:
        raise LLMError("invalid_output", f"domain_proposer: asked for {count} new domains, got {len(fresh)} "
                                         f"that do not repeat existing ones")
    return fresh[:count]


def design_tools(client: LLMClient, draft: dict[str, Any], tool_count: int) -> M.ToolDesigns:
    return _ask(client, "tool_designer", "tools", {"name": draft["name"], "description": draft["description"],
                                                    "keywords": draft["keywords"], "tool_count": tool_count},
                M.ToolDesigns)


def design_database(client: LLMClient, draft: dict[str, Any], tools: M.ToolDesigns, clock: str) -> M.DatabaseDesign:
    return _ask(client, "database_designer", "schema",
                {"name": draft["name"], "description": draft["description"], "clock": clock,
                 "tools": [t.model_dump(exclude_none=True) for t in tools.tools], "rules": tools.business_rules},
                M.DatabaseDesign)


def write_policy(client: LLMClient, *, name: str, description: str, tables: list[dict[str, Any]],
                 tools: list[dict[str, Any]], rules: list[str]) -> M.PolicyDraft:
    return _ask(client, "policy_writer", "policy", {"name": name, "description": description, "tables": tables,
                                                     "tools": tools, "rules": rules}, M.PolicyDraft)


def write_code(client: LLMClient, *, tool_name: str, tool: dict[str, Any], tables: list[dict[str, Any]],
               rules: list[str]) -> M.ToolCode:
    return _ask(client, "code_writer", "code", {"tool_name": tool_name, "tool": tool, "tables": tables,
                                                 "rules": rules}, M.ToolCode)


def write_tests(client: LLMClient, *, tool_name: str, tool: dict[str, Any], tables: list[dict[str, Any]],
                fixture: dict[str, Any], clock: str) -> M.TestDesigns:
    return _ask(client, "test_writer", "tests", {"tool_name": tool_name, "tool": tool, "tables": tables,
                                                  "fixture": fixture, "clock": clock}, M.TestDesigns)


def debug(client: LLMClient, *, tool_name: str, tool: dict[str, Any], code: str,
          failures: list[dict[str, Any]]) -> M.DebugAnswer:
    return _ask(client, "debugger", "repair", {"tool_name": tool_name, "tool": tool, "code": code,
                                                "failures": failures}, M.DebugAnswer)


def judge_dependencies(client: LLMClient, *, name: str, tools: list[dict[str, Any]],
                       candidates: list[dict[str, Any]]) -> M.DependencyJudgement:
    return _ask(client, "dependency_judge", "graph", {"name": name, "tools": tools, "candidates": candidates},
                M.DependencyJudgement)
