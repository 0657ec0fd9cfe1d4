"""Scripted agents that play a task through the conversational user (Django-free).

They probe the reward: the ``oracle`` (asks for what it needs, confirms before it writes, acts,
answers or refuses with the reason) and ``confirming`` (asks before every single write) must earn
1.0; ``null``, ``random``, ``perturbed`` (the gold chain with one effective perturbation),
``collateral`` (the gold chain plus one edit nobody asked for) and ``wrong_pick`` (the gold chain
acting on the nearest distractor) must earn 0.
"""

from __future__ import annotations

import random
from typing import Any, Protocol

from environments.runtime import statekit
from tasks import phrasing as say
from tasks.instantiation.pipeline import swap_values
from tasks.spec import TaskSpec

from .user import STOP

YES_WORDS = ("yes", "go ahead", "please do", "sure", "do it", "that's right", "correct")


class Agent(Protocol):
    name: str

    def act(self, messages: list[dict[str, Any]], observations: list[dict[str, Any]]) -> dict[str, Any]:
        """Return {"tool_calls": [{"name", "arguments"}]} or {"content": str}."""


def _outputs(observations: list[dict[str, Any]]) -> list[Any]:
    return [o["result"].get("value") for o in observations]


def say_value(kind: str, value: Any) -> str:
    if kind == "money":
        return say.say_money(float(value))
    if kind == "datetime":
        return say.say_instant(value)
    if kind == "date":
        return say.say_date(value)
    return say.humanize(value)


class PlannedAgent:
    """Plays a plan of tool calls the way a careful agent following the policy would."""

    name = "oracle"
    confirm = "once"  # once: one confirmation before the first write; each: before every write; none

    def __init__(self, task: TaskSpec, rng: random.Random | None = None) -> None:
        self.task = task
        self.rng = rng or random.Random(0)
        self.script = task.script
        self.plan = self.make_plan()
        self.sources = [a.get("source") for a in task.communicate_info]
        facts = self.script.facts if self.script else []
        self.questions = [f.question for f in facts if f.needed and not f.opening]
        self.asked = 0
        self.approved: set[int] = set()
        self.awaiting: list[int] | None = None
        self.finals = 0
        self.gold_writes = {i for i, s in enumerate(task.gold_chain) if s["tool"] in task.mutating}

    def make_plan(self) -> list[dict[str, Any]]:
        return [dict(s) for s in self.task.gold_chain]

    # -- what it says ----------------------------------------------------------------------------

    def _summary(self, steps: list[int]) -> str:
        goals = {w.step: w for w in (self.script.writes if self.script else [])}
        parts = [goals[i].summary if i in goals else "make the change you asked for" for i in steps]
        return f"I can {' and '.join(parts)}. Shall I go ahead?"

    def _final(self, outputs: list[Any]) -> str:
        task = self.task
        if task.kind == "refusal" and task.refusal:
            return f"I'm sorry, but I can't do that: {task.refusal['reason']}."
        if task.communicate_info:
            said = []
            for answer, source in zip(task.communicate_info, self.sources):
                try:
                    value = statekit.resolve_refs(source, outputs)
                except KeyError:
                    return "I'm sorry, I could not find that information."
                said.append(answer.get("template", "{value}").format(value=say_value(answer["kind"], value)))
            done = [w.done for w in (self.script.writes if self.script else []) if w.step >= 0]
            return " ".join(done + said)
        done = [w.done for w in (self.script.writes if self.script else []) if w.step >= 0]
        return " ".join(done) or "All done."

    # -- the turn --------------------------------------------------------------------------------

    def _writes_ahead(self, start: int) -> list[int]:
        return [i for i in range(start, len(self.plan)) if i in self.gold_writes]

    def act(self, messages: list[dict[str, Any]], observations: list[dict[str, Any]]) -> dict[str, Any]:
        last_user = next((m.get("content") or "" for m in reversed(messages) if m["role"] == "user"), "")
        if self.awaiting is not None:
            if not say.contains_any(last_user, YES_WORDS):
                return {"content": f"Understood, I won't make that change. {STOP}"}
            self.approved.update(self.awaiting)
            self.awaiting = None
        if self.asked < len(self.questions):
            self.asked += 1
            return {"content": self.questions[self.asked - 1]}
        done = len(observations)
        if done < len(self.plan):
            step = self.plan[done]
            if done in self.gold_writes and done not in self.approved and self.confirm != "none":
                self.awaiting = self._writes_ahead(done) if self.confirm == "once" else [done]
                return {"content": self._summary(self.awaiting)}
            try:
                args = statekit.resolve_refs(step["args"], _outputs(observations))
            except KeyError:
                return {"content": f"I'm sorry, I could not find the record you mean. {STOP}"}
            return {"tool_calls": [{"name": step["tool"], "arguments": args}]}
        self.finals += 1
        if self.finals == 1:
            return {"content": self._final(_outputs(observations))}
        if self.finals == 2 and self.task.kind == "refusal":
            return {"content": f"I understand, but I'm afraid I can't: {self.task.refusal['reason']}."}
        return {"content": f"Thank you for contacting us. {STOP}"}


class OracleAgent(PlannedAgent):
    name = "oracle"


class ConfirmingAgent(PlannedAgent):
    """Asks for an explicit yes before every single write."""

    name = "confirming"
    confirm = "each"


class NullAgent:
    name = "null"

    def __init__(self, task: TaskSpec, rng: random.Random | None = None) -> None:
        pass

    def act(self, messages: list[dict[str, Any]], observations: list[dict[str, Any]]) -> dict[str, Any]:
        return {"content": f"I'm sorry, I can't help with that. {STOP}"}


def observed_values(outputs: list[Any]) -> list[str]:
    """What an agent that read the outputs might recite: the scalar values of its observations."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
            found.append(str(value))

    for out in outputs:
        walk(out)
    return found


class RandomAgent:
    """Valid random calls inside the task's subgraph H, then recites what it saw."""

    name = "random"

    def __init__(self, task: TaskSpec, rng: random.Random | None = None, calls: int = 6) -> None:
        self.rng = rng or random.Random(0)
        self.task = task
        self.budget = calls
        self.options = sorted(t for t in task.subgraph if t in task.positive_args)

    def act(self, messages: list[dict[str, Any]], observations: list[dict[str, Any]]) -> dict[str, Any]:
        if len(observations) >= self.budget or not self.options:
            seen = observed_values(_outputs(observations))[:12]
            return {"content": "Here is what I found: " + ", ".join(seen) + f". {STOP}"}
        name = self.rng.choice(self.options)
        return {"tool_calls": [{"name": name, "arguments": dict(self.task.positive_args[name])}]}


class PerturbedAgent(PlannedAgent):
    """The gold chain with one perturbation (one the audit found effective), played carefully."""

    name = "perturbed"

    def __init__(self, task: TaskSpec, rng: random.Random | None = None, kind: str | None = None) -> None:
        self.kind = kind
        super().__init__(task, rng)

    def make_plan(self) -> list[dict[str, Any]]:
        from tasks.audit import perturb_chain

        kinds = [self.kind] if self.kind else sorted(self.task.perturbations)
        self.rng.shuffle(kinds)
        for kind in kinds:
            plan = self.task.perturbations.get(kind) or perturb_chain(self.task, kind, random.Random(kind))
            if plan is not None:
                self.kind = kind
                return plan
        self.kind = "none"
        return [dict(s) for s in self.task.gold_chain]


class CollateralAgent(PlannedAgent):
    """The gold chain plus one edit of an existing row that nobody asked for."""

    name = "collateral"

    def make_plan(self) -> list[dict[str, Any]]:
        extra = self.task.evaluation.get("collateral")
        return [dict(s) for s in self.task.gold_chain] + ([dict(extra)] if extra else [])


class WrongPickAgent(PlannedAgent):
    """Acts on the nearest distractor instead of the target (the refusal's forbidden call for a
    refusal task), without asking; answers from what it finds."""

    name = "wrong_pick"
    confirm = "none"

    def __init__(self, task: TaskSpec, rng: random.Random | None = None) -> None:
        super().__init__(task, rng)
        swaps = (task.evaluation.get("near_miss") or {}).get("swap") or []
        self.sources = [swap_values(s, swaps) for s in self.sources]
        self.questions = []

    def make_plan(self) -> list[dict[str, Any]]:
        if self.task.kind == "refusal" and self.task.refusal:
            return [dict(s) for s in self.task.gold_chain] + [dict(self.task.refusal["forbidden"])]
        swaps = (self.task.evaluation.get("near_miss") or {}).get("swap") or []
        return swap_values([dict(s) for s in self.task.gold_chain], swaps)

    def _final(self, outputs: list[Any]) -> str:
        if self.task.kind == "refusal":
            return "Done, that's taken care of."
        return super()._final(outputs)


AGENTS: dict[str, type] = {"oracle": OracleAgent, "confirming": ConfirmingAgent, "null": NullAgent,
                           "random": RandomAgent, "perturbed": PerturbedAgent, "collateral": CollateralAgent,
                           "wrong_pick": WrongPickAgent}
