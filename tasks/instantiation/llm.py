"""Phase-2 stages written by an LLM, behind the procedural instantiator's stage hooks (Django-free).

The procedural planner still picks the intent, the customer and their records (entity-consistent s0)
and the scripted user's script, so every check the procedural path runs (oracle through the scripted
user, perturbations, ambiguity, leaks, reachability) applies unchanged. On top of it:

* **chain writer** writes C1 as executable steps from the intent; it is kept only when executing it
  on s0 succeeds and reaches the planner's end state (the same state change, the same answers, the
  writes at the same steps), otherwise the planner's chain stays and the reason is recorded;
* **state builder** adds near-miss distractor rows; each is kept only when it is schema-valid, does
  not fit the scenario's description of the target, and C1 reads and writes exactly the same with it;
* **scenario writer** writes the τ²-shaped user scenario from the goal and what the user knows, never
  from the answer key; it is kept only when it passes the leak audit (no tool, gold parameter or
  internal id), does not state an answer the agent must find, conveys every fact the gold arguments
  need and mentions no e-mail the state does not hold (one correction is asked for, then the
  planner's scenario stays and the reason is recorded);
* **gate** gives its opinion p_llm on one more chain; the score used is the mean of it and the
  closed form (an LLM error falls back to the closed form, recorded).

Every decision lands in ``draft.evaluation["llm"]``; a rejected answer also becomes a non-blocking
audit flag ``llm_<stage>_rejected`` with its reason (tasks/services.py adds them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from environments.llm import LLMClient, LLMError
from environments.llm import load as load_prompt
from environments.runtime import statekit
from environments.runtime.executor import Sandbox

from tasks import phrasing

from .pipeline import GateSettings, Instantiator, TaskDraft, gate_score, run_chain
from .plan import Plan, Script, render_instructions
from .view import DomainView

STAGES = ("chain", "state", "scenario", "gate")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


@dataclass(frozen=True)
class Stages:
    """Which phase-2 stages an LLM writes (the others stay procedural)."""

    chain: bool = False
    state: bool = False
    scenario: bool = False
    gate: bool = False

    @classmethod
    def parse(cls, backend: str = "procedural", scenarios: str = "procedural") -> Stages:
        every = backend == "llm"
        return cls(chain=every, state=every, scenario=every or scenarios == "llm", gate=every)

    @property
    def names(self) -> list[str]:
        return [s for s in STAGES if getattr(self, s)]

    @property
    def any(self) -> bool:
        return bool(self.names)


# ---------------------------------------------------------------------------------------------
# What each stage answers


class ChainStep(BaseModel):
    tool: str
    args: dict[str, Any] = Field(description="literal values, or references to earlier outputs ($ref, $pick...)")


class ChainAnswer(BaseModel):
    steps: list[ChainStep] = Field(min_length=1, max_length=8)


class DistractorRow(BaseModel):
    table: str
    row: dict[str, Any] = Field(description="every column of the table, a new primary key")
    why: str = Field(description="which detail makes it a near miss")


class StateAnswer(BaseModel):
    distractors: list[DistractorRow] = Field(max_length=12)


class ScenarioAnswer(BaseModel):
    persona: str = Field(min_length=3)
    reason_for_call: str = Field(min_length=10)
    known_info: str = Field(min_length=3)
    unknown_info: str
    task_instructions: str = Field(min_length=10)


class GateAnswer(BaseModel):
    p: float = Field(ge=0.0, le=1.0)
    reason: str


# ---------------------------------------------------------------------------------------------
# The scenario checks (the leak audit the procedural path uses, plus answer-key and grounding checks)


class _Said:
    """A script stand-in whose ``user_texts`` are a scenario's sentences (for tasks.audit.leaks)."""

    def __init__(self, texts: list[str]) -> None:
        self._texts = texts

    def user_texts(self) -> list[str]:
        return self._texts


@dataclass
class _LeakProbe:
    script: _Said
    gold_chain: list[dict[str, Any]]
    s0: dict[str, Any]


def _conveys(text: str, value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, (int, float)):
        return phrasing.mentions(text, "number", value)
    value = str(value)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T.*", value):
        return phrasing.mentions(text, "datetime", value)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return phrasing.mentions(text, "date", value)
    return value.lower() in text.lower()


def scenario_problems(scenario: dict[str, Any], draft: TaskDraft, view: DomainView) -> list[str]:
    """Why a written scenario cannot be used (empty: it can)."""
    from tasks.audit import leaks  # the same leak audit as every task (imported late: audit imports the pipeline)

    inst = scenario["instructions"]
    texts = [scenario["persona"], inst["reason_for_call"], inst["known_info"], inst["unknown_info"],
             inst["task_instructions"]]
    problems = [f"leak: {p}" for p in leaks(_LeakProbe(_Said(texts), draft.gold_chain, draft.s0), view)]
    whole = " ".join(texts)
    for answer in draft.communicate_info:  # the answer key: what the agent must find out and say
        if phrasing.mentions(whole, answer["kind"], answer["value"]):
            problems.append(f"answer key: the scenario states {answer['label']} ({answer['value']!r}), which the "
                            "agent must find with the tools")
    told = " ".join([inst["reason_for_call"], inst["known_info"]])
    script = Script.from_dict(draft.script)
    for fact in script.facts:
        if fact.needed and fact.values and not any(_conveys(told, v) for v in fact.values):
            problems.append(f"ungrounded: known info lacks the {fact.key} the agent needs "
                            f"({', '.join(map(str, fact.values[:2]))})")
    # An e-mail must be one the state holds or one the user brings (a new address they want set).
    held = {str(v).lower() for state in (draft.s0, draft.s_gt) for rows in state.values() for row in rows.values()
            for v in row.values() if isinstance(v, str) and "@" in v}
    held |= {str(v).lower() for fact in script.facts for v in fact.values}
    for email in EMAIL.findall(whole):
        if email.lower() not in held:
            problems.append(f"invented: the e-mail {email} is neither in the state nor among the user's facts")
    return problems


# ---------------------------------------------------------------------------------------------
# The instantiator


def _tool_cards(view: DomainView, names: list[str] | None = None) -> list[dict[str, Any]]:
    chosen = sorted(view.tools) if names is None else [n for n in names if n in view.tools]
    return [{"name": n, "description": view.tools[n].description, "parameters": view.tools[n].parameters,
             "returns": view.tools[n].output_fields, "writes": view.tools[n].writes} for n in chosen]


class LLMInstantiator(Instantiator):
    def __init__(self, view: DomainView, sandbox: Sandbox, settings: GateSettings | None, client: LLMClient,
                 stages: Stages) -> None:
        super().__init__(view, sandbox, settings)
        self.client = client
        self.stages = stages
        self.notes: dict[str, Any] = {}

    # -- bookkeeping -------------------------------------------------------------------------

    def _note(self, stage: str, **fields: Any) -> None:
        self.notes.setdefault("stages", {})[stage] = fields

    def _reject(self, stage: str, reason: str, **fields: Any) -> None:
        self._note(stage, accepted=False, reason=reason[:1500], **fields)
        self.notes.setdefault("flags", []).append({"code": f"llm_{stage}_rejected", "blocking": False,
                                                  "reason": reason[:600]})

    def build(self, seed: int, complexity: str = "medium") -> TaskDraft:
        self.notes = {"stages_by_llm": self.stages.names}
        self.client = self.client.with_context(domain=self.view.slug, seed=seed)
        draft = super().build(seed, complexity)
        draft.evaluation["llm"] = self.notes
        return draft

    # -- chain writer ----------------------------------------------------------------------

    def choose_chain(self, plan: Plan, s0: dict[str, Any], run: dict[str, Any]) -> tuple[Plan, dict[str, Any]]:
        if not self.stages.chain:
            return plan, run
        prompt = load_prompt("chain_writer")
        variables = {"domain": self.view.name, "policy": self.view.policy or "(none)", "kind": plan.kind,
                     "goal": plan.purpose, "customer_says": [f.known for f in plan.script.facts],
                     "tools": _tool_cards(self.view)}
        try:
            answer = self.client.structured(role="chain_writer", stage="chain_writer", prompt=prompt,
                                            variables=variables, schema=ChainAnswer)
        except LLMError as exc:
            self._reject("chain", f"{exc.outcome}: {exc}")
            return plan, run
        steps = [{"tool": s.tool, "args": s.args} for s in answer.steps]
        problem = self._chain_problem(plan, steps, s0, run)
        if problem:
            self._reject("chain", problem, steps=steps)
            return plan, run
        self._note("chain", accepted=True, steps=len(steps))
        plan.gold = steps
        return plan, run_chain(self.sandbox, steps, s0) or run

    def _chain_problem(self, plan: Plan, steps: list[dict[str, Any]], s0: dict[str, Any],
                       reference: dict[str, Any]) -> str:
        unknown = sorted({s["tool"] for s in steps} - set(self.view.tools))
        if unknown:
            return f"the chain calls unknown tools: {', '.join(unknown)}"
        outcome = self.sandbox.run_sequence(steps, state=statekit.copy_state(s0), return_state=True)
        for index, result in enumerate(outcome["results"]):
            if result["outcome"] != "success":
                return (f"step {index} {steps[index]['tool']} does not run on s0: {result['outcome']} "
                        f"({result.get('error_type')}: {result.get('error')})")[:600]
        if len(outcome["results"]) != len(steps):
            return "the chain stopped before its last step"
        if statekit.diff_states(s0, outcome["state"]) != statekit.diff_states(s0, reference["state"]):
            return "executed on s0, the chain does not make the change the intent needs (its state differs from s_gt)"
        writes = [(i, s["tool"]) for i, s in enumerate(steps) if self.view.tools[s["tool"]].mutates]
        expected = [(i, s["tool"]) for i, s in enumerate(plan.gold) if self.view.tools[s["tool"]].mutates]
        if writes != expected:
            return f"the writes are not where the user's confirmations expect them: {writes} instead of {expected}"
        mine = [r.get("value") for r in outcome["results"]]
        theirs = [r.get("value") for r in reference["results"]]
        for answer in plan.script.answers:
            try:
                if statekit.resolve_refs(answer.source, mine) != statekit.resolve_refs(answer.source, theirs):
                    return f"the chain's outputs do not give {answer.label}"
            except (KeyError, IndexError, TypeError) as exc:
                return f"the chain's outputs do not give {answer.label} ({exc})"
        return ""

    # -- state builder ---------------------------------------------------------------------

    def more_distractors(self, plan: Plan, s0: dict[str, Any], run: dict[str, Any], outputs: list[Any],
                         gold_diff: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, str]]]:
        if not self.stages.state:
            return s0, run, []
        from tasks.audit import fitting_rows  # the ambiguity audit's own matcher

        tables = sorted({t.table for t in plan.targets} | {plan.user["table"]})
        prompt = load_prompt("state_builder")
        variables = {"domain": self.view.name, "goal": plan.purpose,
                     "schema": {t: self.view.schema["tables"][t] for t in tables if t in self.view.schema["tables"]},
                     "targets": [{"table": t.table, "row": s0[t.table][t.pk], "described_as": t.description}
                                 for t in plan.targets if t.pk in s0.get(t.table, {})],
                     "customer": s0[plan.user["table"]][plan.user["pk"]]}
        try:
            answer = self.client.structured(role="state_builder", stage="state_builder", prompt=prompt,
                                            variables=variables, schema=StateAnswer)
        except LLMError as exc:
            self._reject("state", f"{exc.outcome}: {exc}")
            return s0, run, []
        kept: list[dict[str, str]] = []
        refused: list[str] = []
        for index, item in enumerate(answer.distractors):
            table = self.view.schema["tables"].get(item.table)
            pk = str(item.row.get(table["pk"])) if table else ""
            if table is None:
                refused.append(f"row {index}: no table {item.table}")
                continue
            if not pk or pk in s0.get(item.table, {}):
                refused.append(f"row {index}: the primary key {table['pk']}={pk!r} is missing or taken")
                continue
            candidate = statekit.copy_state(s0)
            candidate.setdefault(item.table, {})[pk] = dict(item.row)
            invalid = statekit.validate_rows(self.view.schema, candidate)
            if invalid:
                refused.append(f"row {index} ({item.table} {pk}): not schema-valid: {'; '.join(map(str, invalid[:2]))}")
                continue
            fits = [t.description for t in plan.targets
                    if pk in fitting_rows(candidate, {"table": t.table, "where": t.where, "via": t.via})]
            if fits:
                refused.append(f"row {index} ({item.table} {pk}): fits the target as well ({fits[0]}): ambiguous")
                continue
            # A near miss may show up in what C1 reads (that is its point), but C1 must still make the
            # same change and give the same answers.
            again = run_chain(self.sandbox, plan.gold, candidate)
            if again is None or statekit.diff_states(candidate, again["state"]) != gold_diff or \
                    not self._same_answers(plan, [r.get("value") for r in again["results"]], outputs):
                refused.append(f"row {index} ({item.table} {pk}): with it the gold chain fails, makes another change "
                               "or gives other answers")
                continue
            s0, run = candidate, again
            kept.append({"table": item.table, "pk": pk, "why": f"near miss (llm): {item.why}"[:200]})
        self._note("state", accepted=bool(kept) or not answer.distractors, kept=len(kept), refused=refused[:10])
        if refused and not kept:
            self._reject("state", "; ".join(refused[:3]))
        return s0, run, kept

    @staticmethod
    def _same_answers(plan: Plan, mine: list[Any], theirs: list[Any]) -> bool:
        try:
            return all(statekit.resolve_refs(a.source, mine) == statekit.resolve_refs(a.source, theirs)
                       for a in plan.script.answers)
        except (KeyError, IndexError, TypeError):
            return False

    # -- scenario writer -------------------------------------------------------------------

    def write_scenario(self, draft: TaskDraft) -> None:
        if not self.stages.scenario:
            return
        script = Script.from_dict(draft.script)
        prompt = load_prompt("scenario_writer")
        variables = {"domain": self.view.name, "kind": draft.kind, "persona_hint": draft.user_scenario["persona"],
                     "goal": script.goal, "purpose": draft.evaluation.get("purpose", ""),
                     "known": [f.known for f in script.facts], "unknown": [u.unknown for u in script.unknowns],
                     "wants_to_know": [a["label"] for a in draft.communicate_info],
                     "refusal": bool(script.refusal), "stop": "###STOP###"}
        problems: list[str] = []
        for attempt in range(2):  # one correction with the problems named
            if problems:
                variables = {**variables, "goal": f"{script.goal}\n\nYOUR LAST ANSWER WAS REJECTED: "
                                                  + "; ".join(problems[:5])}
            try:
                answer = self.client.structured(role="scenario_writer", stage="scenario_writer", prompt=prompt,
                                                variables=variables, schema=ScenarioAnswer)
            except LLMError as exc:
                self._reject("scenario", f"{exc.outcome}: {exc}")
                return
            scenario = {"persona": answer.persona,
                        "instructions": {"domain": self.view.name, "reason_for_call": answer.reason_for_call,
                                         "known_info": answer.known_info, "unknown_info": answer.unknown_info,
                                         "task_instructions": answer.task_instructions}}
            problems = scenario_problems(scenario, draft, self.view)
            if not problems:
                draft.user_scenario = scenario
                draft.instruction = render_instructions(scenario)
                self._note("scenario", accepted=True, attempts=attempt + 1, prompt=prompt.version)
                return
        self._reject("scenario", "the written scenario was refused: " + "; ".join(problems[:4]),
                     attempts=2, prompt=prompt.version)

    # -- gate ------------------------------------------------------------------------------

    def gate_p(self, unused: int, c_h: float, g_d: float, record: dict[str, Any]) -> float:
        closed = gate_score(unused, c_h, g_d)
        if not self.stages.gate:
            return closed
        prompt = load_prompt("gate")
        variables = {"domain": self.view.name, "unused": unused, "c_h": round(c_h, 4), "g_d": round(g_d, 4),
                     "h_size": record.get("h_size", 0), "tau": self.settings.tau}
        record["p_formula"] = closed
        try:
            answer = self.client.structured(role="gate", stage="gate", prompt=prompt, variables=variables,
                                            schema=GateAnswer)
        except LLMError as exc:
            record["llm_error"] = f"{exc.outcome}: {str(exc)[:200]}"
            return closed
        record["p_llm"], record["llm_reason"] = answer.p, answer.reason[:300]
        return round((closed + answer.p) / 2, 4)


def llm_figures(calls: list[dict[str, Any]], tasks: int) -> dict[str, Any]:
    """Tokens and cost per task from a batch's call rows, next to the paper's figure (Table 9)."""
    prompt = sum(c["prompt_tokens"] for c in calls if not c["cached"])
    completion = sum(c["completion_tokens"] for c in calls if not c["cached"])
    per = (lambda n: round(n / tasks, 1) if tasks else 0.0)
    return {"llm_calls": len(calls), "llm_requests": sum(1 for c in calls if not c["cached"]),
            "llm_cached": sum(1 for c in calls if c["cached"]),
            "llm_failed": sum(1 for c in calls if c["outcome"] != "ok"),
            "prompt_tokens": prompt, "completion_tokens": completion,
            "tokens_per_task": per(prompt + completion), "cost": round(sum(c["cost"] for c in calls), 6),
            "cost_per_task": round(sum(c["cost"] for c in calls) / tasks, 6) if tasks else 0.0,
            "paper_tokens_per_task": 93_200}


__all__ = ["ChainAnswer", "GateAnswer", "LLMInstantiator", "ScenarioAnswer", "StateAnswer", "Stages", "STAGES",
           "llm_figures", "scenario_problems"]
