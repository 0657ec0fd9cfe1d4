"""Episodes: an agent and a simulated user around a sandboxed environment (Django-free).

Messages use the OpenAI chat format (assistant ``tool_calls`` with JSON-string arguments, ``tool``
replies with ``tool_call_id``). Termination reasons follow τ²-bench. Only ``agent_stop`` and
``user_stop`` are rewarded.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from environments.runtime import statekit
from environments.runtime.executor import Sandbox
from tasks.reward import compute_reward
from tasks.spec import TaskSpec

STOP = "###STOP###"
REWARDED = ("agent_stop", "user_stop")


@dataclass
class Step:
    index: int
    kind: str  # tool_call | message
    tool: str | None = None
    arguments: Any = None
    outcome: str | None = None
    observation: str | None = None
    diff: dict[str, Any] = field(default_factory=dict)
    content: str | None = None
    duration_ms: float = 0.0
    executed: bool = True  # False for calls refused before reaching the sandbox (unknown tool)


@dataclass
class EpisodeResult:
    messages: list[dict[str, Any]]
    steps: list[Step]
    final_state: dict[str, Any]
    final_hash: str
    reward: float
    breakdown: dict[str, Any]
    termination: str
    seconds: float
    seed: int
    tool_errors: int


class Agent(Protocol):
    name: str

    def act(self, messages: list[dict[str, Any]], observations: list[dict[str, Any]]) -> dict[str, Any]:
        """Return {"tool_calls": [{"name", "arguments"}]} or {"content": str}."""


class ScriptedUser:
    """Reveals the instruction, answers from the profile, and ends when the agent is done."""

    def __init__(self, task: TaskSpec) -> None:
        self.task = task

    def first_message(self) -> str:
        return self.task.instruction

    def respond(self, agent_text: str) -> str:
        text = agent_text.lower()
        profile = self.task.user_profile
        for key in ("email", "name", "city", "customer_id"):
            if key.replace("_", " ") in text and "?" in text and profile.get(key):
                return f"My {key.replace('_', ' ')} is {profile[key]}."
        return f"Thanks, that's everything. {STOP}"


def tool_message_content(result: dict[str, Any]) -> str:
    if result["outcome"] == "success":
        value = result.get("value")
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return f"Error: {result.get('error_type')}: {result.get('error')}"


def run_episode(task: TaskSpec, agent: Agent, sandbox: Sandbox, *, seed: int = 0, max_steps: int = 50,
                max_errors: int = 10) -> EpisodeResult:
    started = time.perf_counter()
    user = ScriptedUser(task)
    sandbox.reset(statekit.copy_state(task.s0))
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a helpful agent. Use the tools to do what the user asks, then tell "
                                      f"them what you found. End with {STOP} when done."},
        {"role": "user", "content": user.first_message()},
    ]
    steps: list[Step] = []
    observations: list[dict[str, Any]] = []
    errors = 0
    termination = "max_steps"
    call_counter = 0
    allowed = {t["function"]["name"] for t in task.tools}
    for _turn in range(max_steps):
        try:
            action = agent.act(messages, observations)
        except Exception as exc:  # noqa: BLE001 - the agent's fault, recorded as a termination reason
            messages.append({"role": "assistant", "content": f"[agent error: {type(exc).__name__}: {exc}]"})
            termination = "agent_error"
            break
        if action.get("tool_calls"):
            calls = []
            for call in action["tool_calls"]:
                call_counter += 1
                calls.append({"id": f"call_{call_counter}", "type": "function",
                              "function": {"name": call["name"], "arguments": json.dumps(call.get("arguments", {}))}})
            messages.append({"role": "assistant", "content": None, "tool_calls": calls})
            for call, spec in zip(action["tool_calls"], calls):
                name, args = call["name"], call.get("arguments", {})
                executed = name in allowed
                if not executed:
                    result = {"outcome": "anticipated_rejection", "error_type": "UnknownTool",
                              "error": f"there is no tool named {name!r}", "diff": {}}
                else:
                    result = sandbox.call(name, args)
                content = tool_message_content(result)
                messages.append({"role": "tool", "tool_call_id": spec["id"], "content": content})
                observations.append({"tool": name, "arguments": args, "result": result})
                steps.append(Step(len(steps), "tool_call", tool=name, arguments=args, outcome=result["outcome"],
                                  observation=content[:4000], diff=result.get("diff", {}),
                                  duration_ms=float(result.get("duration_ms") or 0.0), executed=executed))
                if result["outcome"] != "success":
                    errors += 1
            if errors >= max_errors:
                termination = "too_many_errors"
                break
            continue
        content = str(action.get("content") or "")
        messages.append({"role": "assistant", "content": content})
        steps.append(Step(len(steps), "message", content=content[:4000]))
        if STOP in content:
            termination = "agent_stop"
            break
        reply = user.respond(content)
        messages.append({"role": "user", "content": reply})
        if STOP in reply:
            termination = "user_stop"
            break
    final_state, final_hash = sandbox.get_state()
    assistant_texts = [m["content"] for m in messages if m["role"] == "assistant" and m.get("content")]
    result = compute_reward(final_state, task.s_gt, task.s0, task.schema, task.communicate_info, assistant_texts)
    breakdown = result.breakdown()
    reward = result.reward if termination in REWARDED else 0.0
    if termination not in REWARDED:
        breakdown["reasons"] = [f"termination {termination} is not rewarded"] + breakdown["reasons"]
    return EpisodeResult(messages=messages, steps=steps, final_state=final_state, final_hash=final_hash, reward=reward,
                         breakdown=breakdown, termination=termination, seconds=round(time.perf_counter() - started, 4),
                         seed=seed, tool_errors=errors)


# ---------------------------------------------------------------------------------------------
# Agents


def _resolve(args: Any, outputs: list[Any]) -> Any:
    try:
        return statekit.resolve_refs(args, outputs)
    except KeyError:
        return args


def _say(values: list[str]) -> str:
    return ("Done. " + ("Here is what I found: " + ", ".join(values) + ". " if values else "") + STOP)


class OracleAgent:
    """Runs the gold chain, feeding each step the outputs it actually observed."""

    name = "oracle"

    def __init__(self, task: TaskSpec, rng: random.Random | None = None) -> None:
        self.plan = list(task.gold_chain)
        self.task = task
        self.outputs: list[Any] = []

    def act(self, messages: list[dict[str, Any]], observations: list[dict[str, Any]]) -> dict[str, Any]:
        self.outputs = [o["result"].get("value") for o in observations]
        if len(observations) < len(self.plan):
            step = self.plan[len(observations)]
            return {"tool_calls": [{"name": step["tool"], "arguments": _resolve(step["args"], self.outputs)}]}
        return {"content": _say(self.task.communicate_info and _observed_values(self.task, self.outputs))}


def _observed_values(task: TaskSpec, outputs: list[Any]) -> list[str]:
    """What an agent that read the outputs would report: scalar values of its observations."""
    found = []
    for out in outputs:
        if isinstance(out, dict):
            for value in out.values():
                if isinstance(value, (int, float, str)) and not isinstance(value, bool):
                    found.append(str(value))
    return found


class NullAgent:
    name = "null"

    def __init__(self, task: TaskSpec, rng: random.Random | None = None) -> None:
        pass

    def act(self, messages: list[dict[str, Any]], observations: list[dict[str, Any]]) -> dict[str, Any]:
        return {"content": f"Sorry, I can't help with that. {STOP}"}


class RandomAgent:
    """Valid random calls inside the task's subgraph H, then stops."""

    name = "random"

    def __init__(self, task: TaskSpec, rng: random.Random | None = None, calls: int = 6) -> None:
        self.rng = rng or random.Random(0)
        self.task = task
        self.budget = calls
        self.options = sorted(t for t in task.subgraph if t in task.positive_args)

    def act(self, messages: list[dict[str, Any]], observations: list[dict[str, Any]]) -> dict[str, Any]:
        if len(observations) >= self.budget or not self.options:
            return {"content": _say(_observed_values(self.task, [o["result"].get("value") for o in observations])[:5])}
        name = self.rng.choice(self.options)
        return {"tool_calls": [{"name": name, "arguments": dict(self.task.positive_args[name])}]}


PERTURBATIONS = ("changed_argument", "dropped_write", "extra_write")


def perturb_chain(task: TaskSpec, kind: str, rng: random.Random) -> list[dict[str, Any]] | None:
    """The gold chain with one perturbation; None when it does not apply to this chain."""
    chain = [dict(s, args=dict(s["args"])) for s in task.gold_chain]
    if kind == "changed_argument":
        # An argument that matters: a literal of a writing step, else an id a read looks up.
        literal = [(i, p) for i, s in enumerate(chain) if s["tool"] in task.mutating for p, v in s["args"].items()
                   if not (isinstance(v, dict) and "$ref" in v)]
        literal = literal or [(i, p) for i, s in enumerate(chain) for p, v in s["args"].items()
                              if p.endswith("_id") and not (isinstance(v, dict) and "$ref" in v)]
        if not literal:
            return None
        i, p = rng.choice(literal)
        value = chain[i]["args"][p]
        if isinstance(value, bool):
            chain[i]["args"][p] = not value
        elif isinstance(value, (int, float)):
            chain[i]["args"][p] = value + 1
        elif isinstance(value, str):
            table_rows = [pk for rows in task.s0.values() for pk in rows if pk != value and
                          pk.split("_")[0] == value.split("_")[0]]
            chain[i]["args"][p] = rng.choice(sorted(table_rows)) if table_rows else value + " (changed)"
        return chain
    writes = [i for i, s in enumerate(chain) if s["tool"] in task.mutating]
    if kind == "dropped_write":
        if not writes:
            return None
        drop = rng.choice(writes)
        removed = {drop}
        for i, s in enumerate(chain):  # steps fed by a removed step go too
            if any(isinstance(v, dict) and "$ref" in v and v["$ref"][0] in removed for v in s["args"].values()):
                removed.add(i)
        new_index = {}
        kept = []
        for i, s in enumerate(chain):
            if i in removed:
                continue
            new_index[i] = len(kept)
            kept.append(dict(s, args={p: ({"$ref": [new_index[v["$ref"][0]], v["$ref"][1]]}
                                          if isinstance(v, dict) and "$ref" in v else v) for p, v in s["args"].items()}))
        return kept
    if kind == "extra_write":
        extra = sorted(t for t in task.subgraph if t in task.positive_args and t in task.mutating)
        if not extra:
            return None
        name = rng.choice(extra)
        return chain + [{"tool": name, "args": dict(task.positive_args[name])}]
    raise ValueError(kind)


class PerturbedAgent(OracleAgent):
    """The gold chain with one perturbation (the audit's); reports what it observed."""

    name = "perturbed"

    def __init__(self, task: TaskSpec, rng: random.Random | None = None, kind: str | None = None) -> None:
        super().__init__(task, rng)
        rng = rng or random.Random(0)
        # The audit found and stored the perturbations that change the outcome; play one of them.
        kinds = [kind] if kind else sorted(task.perturbations)
        rng.shuffle(kinds)
        self.kind = "none"
        for k in kinds:
            plan = task.perturbations[k] if k in task.perturbations else perturb_chain(task, k, random.Random(k))
            if plan is not None:
                self.plan, self.kind = plan, k
                break

    def act(self, messages: list[dict[str, Any]], observations: list[dict[str, Any]]) -> dict[str, Any]:
        self.outputs = [o["result"].get("value") for o in observations]
        if len(observations) < len(self.plan):
            step = self.plan[len(observations)]
            args = _resolve(step["args"], self.outputs)
            return {"tool_calls": [{"name": step["tool"], "arguments": args}]}
        return {"content": _say(_observed_values(self.task, self.outputs)[:3] if self.task.communicate_info else [])}


AGENTS = {"oracle": OracleAgent, "null": NullAgent, "random": RandomAgent, "perturbed": PerturbedAgent}


def pass_hat_k(successes: int, trials: int, k: int) -> float:
    """τ-bench's pass^k for one task: C(c, k) / C(n, k)."""
    from math import comb

    if trials < k:
        return 0.0
    return comb(successes, k) / comb(trials, k)
