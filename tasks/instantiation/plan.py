"""A task's plan: the user, what they want and know, the careful agent's gold chain, and what
success looks like (Django-free, plain data that is stored on the task).

Three audiences read it:

* the **user simulator** reads the :class:`Script` (what to open with, which facts to give when
  asked, which proposals to accept, how to react to a refusal);
* **curators** and an LLM user read the τ²-bench ``user_scenario`` rendered from it (persona,
  reason for call, known info, unknown info, task instructions);
* the **reward and the audits** read the gold chain, the answers and the refusal.

The agent reads none of it: it sees the domain's policy, the tools and the user's messages.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("write", "question", "refusal")


@dataclass
class Fact:
    """Something the user knows and says when asked (one piece at a time)."""

    key: str  # "email", "name", "when", "which", "amount", "text", ...
    say: str  # the user's words when asked: "It's wen.bianchi42@example.com."
    asked_by: list[str]  # words in an agent message that ask for it ("email", "e-mail")
    known: str  # the τ² known-info sentence: "Your e-mail address is …"
    question: str  # how a careful agent asks for it (the oracle's words)
    values: list[Any] = field(default_factory=list)  # machine values it conveys (grounding audit)
    opening: bool = False  # already said in the first message
    needed: bool = True  # a careful agent must ask for it (unless the opening said it)


@dataclass
class Unknown:
    """Something the user does not know (internal ids, reference numbers they never saw)."""

    key: str
    asked_by: list[str]
    say: str
    unknown: str  # the τ² unknown-info sentence


@dataclass
class Detail:
    """A detail that identifies a proposal: a date, a time, an amount, some words."""

    kind: str  # date | time | datetime | number | money | words
    value: Any

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value}


@dataclass
class WriteGoal:
    """One change the user wants, and how the user recognizes a proposal of it."""

    step: int  # index of the gold step that makes it
    verbs: list[str]  # any of these words says what the action is ("cancel", "call off")
    details: list[Detail]  # all of these must be in the proposal
    wrong: list[Detail]  # details of the near miss: a proposal naming them is declined
    summary: str  # how a careful agent proposes it ("cancel your visit on Tuesday 10 March at 09:00")
    done: str  # how a careful agent reports it done


@dataclass
class Answer:
    """A value a question task must be answered with."""

    kind: str  # money | number | date | datetime | words
    value: Any
    label: str  # "the amount left on your bill from 3 February"
    source: Any  # a reference expression over the gold chain's outputs that yields it
    template: str = "{value}"  # how a careful agent says it: "You still owe {value} on your bill from 3 February."
    exclusive: list[Any] = field(default_factory=list)  # values the answer rules out (a request's other states)


@dataclass
class Refusal:
    reason: str  # why the policy forbids it, in the agent's words
    keywords: list[str]  # a refusal must name the reason with one of these
    forbidden: dict[str, Any]  # the call that must not be made: {"tool", "args"} (literal args)
    by: str  # "tool" (the tool refuses it) or "policy" (only the policy forbids it)
    rule: str  # the policy words that forbid it (refusal-soundness audit)


@dataclass
class Script:
    kind: str  # write | question | refusal
    opening: str
    goal: str  # the user's restatement when the agent drifts
    facts: list[Fact]
    unknowns: list[Unknown]
    writes: list[WriteGoal] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    refusal: Refusal | None = None
    insist_once: bool = True
    closing: str = "Thanks, that's all I needed."
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Script":
        return cls(kind=data["kind"], opening=data["opening"], goal=data["goal"],
                   facts=[Fact(**f) for f in data.get("facts", [])],
                   unknowns=[Unknown(**u) for u in data.get("unknowns", [])],
                   writes=[WriteGoal(step=w["step"], verbs=w["verbs"], details=[Detail(**d) for d in w["details"]],
                                     wrong=[Detail(**d) for d in w["wrong"]], summary=w["summary"], done=w["done"])
                           for w in data.get("writes", [])],
                   answers=[Answer(**a) for a in data.get("answers", [])],
                   refusal=Refusal(**data["refusal"]) if data.get("refusal") else None,
                   insist_once=data.get("insist_once", True), closing=data.get("closing", "Thanks."),
                   seed=data.get("seed", 0))

    def user_texts(self) -> list[str]:
        """Everything the scripted user can say in this task (the leak audit reads these)."""
        from tasks.rollout.user import fixed_lines

        return [self.opening, self.goal, self.closing, *(f.say for f in self.facts),
                *(u.say for u in self.unknowns), *fixed_lines(self)]


@dataclass
class Target:
    """The record a task is about, as the scenario describes it (the ambiguity audit counts the
    rows of s0 that fit the same description)."""

    table: str
    pk: str
    where: dict[str, Any]  # column -> value on the target row
    via: list[dict[str, Any]] = field(default_factory=list)  # [{"fk": col, "table": t, "where": {...}}]
    description: str = ""


@dataclass
class Plan:
    intent: str
    kind: str
    user: dict[str, str]  # {"table", "pk"}
    gold: list[dict[str, Any]]  # steps: {"tool", "args"}; args may hold references
    script: Script
    persona: str
    reason_for_call: str
    task_instructions: list[str]
    purpose: str  # for curators (τ² description.purpose)
    targets: list[Target] = field(default_factory=list)
    near_miss: list[dict[str, Any]] | None = None  # the gold chain acting on the nearest distractor
    collateral: dict[str, Any] | None = None  # an unrequested edit of an existing row (probe agent)
    rows_added: list[dict[str, str]] = field(default_factory=list)  # {"table", "pk", "why"}

    def user_scenario(self, domain_name: str) -> dict[str, Any]:
        """τ²-bench's ``user_scenario`` (field names as τ² spells them)."""
        known = " ".join(f.known for f in self.script.facts)
        unknown = " ".join(u.unknown for u in self.script.unknowns) or "Nothing in particular."
        return {"persona": self.persona,
                "instructions": {"domain": domain_name, "reason_for_call": self.reason_for_call,
                                 "known_info": known, "unknown_info": unknown,
                                 "task_instructions": " ".join(self.task_instructions)}}


def render_instructions(scenario: dict[str, Any]) -> str:
    """The scenario as one text, the way τ²-bench renders it for an LLM user simulator."""
    inst = scenario["instructions"]
    return (f"Persona: {scenario['persona']}\n\nDomain: {inst['domain']}\n\nReason for call: {inst['reason_for_call']}"
            f"\n\nKnown info: {inst['known_info']}\n\nUnknown info: {inst['unknown_info']}"
            f"\n\nTask instructions: {inst['task_instructions']}")
