"""What an episode, an audit or a session needs to know about a task, as plain data (Django-free).

One home and one builder: :func:`build_task_spec` takes a domain view and anything that carries the
task's fields as attributes (an instantiation draft or a stored ``Task``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .instantiation.plan import Script
from .instantiation.view import DomainView


@dataclass
class TaskSpec:
    instruction: str  # the user scenario as text (never shown to the agent)
    user_profile: dict[str, Any]
    s0: dict[str, Any]
    s_gt: dict[str, Any]
    gold_chain: list[dict[str, Any]]
    communicate_info: list[dict[str, Any]]  # answers: {kind, value, label, source}
    schema: dict[str, Any]
    tools: list[dict[str, Any]]  # OpenAI function schemas of the tools the agent may call
    policy: str = ""  # the domain's policy: the agent's system prompt
    kind: str = "write"  # write | question | refusal
    script: Script | None = None  # the scripted user's script
    evaluation: dict[str, Any] = field(default_factory=dict)  # refusal, targets, near miss, collateral probe
    subgraph: list[str] = field(default_factory=list)
    positive_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    mutating: list[str] = field(default_factory=list)  # names of tools that write
    perturbations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # kind -> effective plan (audit)

    @property
    def refusal(self) -> dict[str, Any] | None:
        return self.evaluation.get("refusal")


def openai_tools(view: DomainView, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Tool schemas in the OpenAI function format: the name, the tool's description, its parameters."""
    chosen = sorted(view.tools) if names is None else sorted(n for n in names if n in view.tools)
    return [{"type": "function", "function": {"name": n, "description": view.tools[n].description
                                              or view.tools[n].contract.get("description") or n.replace("_", " "),
                                              "parameters": view.tools[n].parameters}}
            for n in chosen]


def build_task_spec(view: DomainView, task: Any) -> TaskSpec:
    """The spec of a task (a draft or a stored row: anything with the task's field names)."""
    script = getattr(task, "script", None)
    return TaskSpec(instruction=task.instruction, user_profile=task.user_profile, s0=task.s0, s_gt=task.s_gt,
                    gold_chain=task.gold_chain, communicate_info=list(task.communicate_info or []),
                    schema=view.schema, tools=openai_tools(view), policy=view.policy,
                    kind=getattr(task, "kind", "write") or "write",
                    script=Script.from_dict(script) if script else None,
                    evaluation=dict(getattr(task, "evaluation", None) or {}), subgraph=task.subgraph,
                    positive_args={n: t.positive[1] for n, t in view.tools.items() if t.positive},
                    mutating=sorted(n for n, t in view.tools.items() if t.mutates),
                    perturbations=dict(getattr(task, "perturbations", None) or {}))
