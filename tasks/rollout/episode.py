"""Episodes: an agent and a simulated user around a sandboxed environment (Django-free).

The agent's system prompt is the domain's policy; the user opens with the reason for the call and
answers one message at a time (tasks/rollout/user.py). Messages use the OpenAI chat format
(assistant ``tool_calls`` with JSON-string arguments, ``tool`` replies with ``tool_call_id``).
Termination reasons follow τ²-bench; only ``agent_stop`` and ``user_stop`` are rewarded.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from environments.runtime import statekit
from environments.runtime.executor import Sandbox
from tasks.judge import RecordingJudge
from tasks.reward import compute_reward
from tasks.semantic import Judge
from tasks.spec import TaskSpec

from .agents import AGENTS, Agent
from .user import STOP, ScriptedUser

REWARDED = ("agent_stop", "user_stop")
FALLBACK_SYSTEM = ("You are a customer-service agent. Use the tools to help the user, following the domain's rules. "
                   f"End with {STOP} when done.")

__all__ = ["AGENTS", "EpisodeResult", "REWARDED", "STOP", "Step", "pass_hat_k", "run_episode", "score",
           "system_prompt", "tool_message_content"]


@dataclass
class Step:
    index: int
    kind: str  # tool_call | message (the agent's) | user (the user's reply)
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


def system_prompt(task: TaskSpec) -> str:
    return task.policy or FALLBACK_SYSTEM


def tool_message_content(result: dict[str, Any]) -> str:
    if result["outcome"] == "success":
        value = result.get("value")
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return f"Error: {result.get('error_type')}: {result.get('error')}"


def score(task: TaskSpec, final_state: dict[str, Any], messages: list[dict[str, Any]], observations: list[Any],
          termination: str, judge: Judge | None = None) -> tuple[float, dict[str, Any]]:
    """The reward of an ended episode and its breakdown (shared by episodes and HTTP sessions).
    ``judge``: a second opinion on ``semantic`` texts (tasks/judge.py); what it decided is the
    breakdown's ``judged``."""
    texts = [m["content"] for m in messages if m["role"] == "assistant" and m.get("content")]
    said = []
    if task.script:
        said = [v for f in task.script.facts for v in f.values] + [
            d.value for w in task.script.writes for d in w.details]
    # An unrewarded ending scores 0 whatever the texts say: the judge is not asked (nor waited for).
    recording = RecordingJudge(judge) if judge is not None and termination in REWARDED else None
    result = compute_reward(final_state, task.s_gt, task.s0, task.schema, answers=task.communicate_info,
                            assistant_messages=texts, observations=observations, refusal=task.refusal, said=said,
                            judge=recording)
    breakdown = result.breakdown()
    if recording is not None and recording.decisions:
        breakdown["judged"] = recording.decisions
    reward = result.reward if termination in REWARDED else 0.0
    if termination not in REWARDED:
        breakdown["reasons"] = [f"termination {termination} is not rewarded"] + breakdown["reasons"]
    return reward, breakdown


def _failure(who: str, exc: Exception) -> dict[str, str]:
    """What ended a run early (an LLM error carries its outcome: timeout, server_error, truncated...)."""
    return {"who": who, "outcome": str(getattr(exc, "outcome", type(exc).__name__)), "message": str(exc)[:1000]}


def run_episode(task: TaskSpec, agent: Agent, sandbox: Sandbox, *, seed: int = 0, max_steps: int = 60,
                max_errors: int = 10, user: Any = None, judge: Judge | None = None) -> EpisodeResult:
    """``user``: the user simulator (``first_message()``, ``respond(text)``); the scripted user by default.
    ``judge``: the semantic judge the score uses (none: the rules alone)."""
    started = time.perf_counter()
    if user is None:
        user = ScriptedUser(task.script) if task.script else None
    sandbox.reset(statekit.copy_state(task.s0))
    failure: dict[str, str] | None = None
    try:
        opening = user.first_message() if user else task.instruction
    except Exception as exc:  # noqa: BLE001 - the user simulator's fault (an LLM error): recorded, not raised
        failure, opening = _failure("user", exc), ""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt(task)},
                                      {"role": "user", "content": opening}]
    steps: list[Step] = [Step(0, "user", content=opening)]
    observations: list[dict[str, Any]] = []
    errors = 0
    termination = "max_steps" if failure is None else "user_error"
    call_counter = 0
    allowed = {t["function"]["name"] for t in task.tools}
    for _turn in range(max_steps if failure is None else 0):
        try:
            action = agent.act(messages, observations)
        except Exception as exc:  # noqa: BLE001 - the agent's fault, recorded as a termination reason
            failure = _failure("agent", exc)
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
        try:
            reply = user.respond(content) if user else f"Thanks. {STOP}"
        except Exception as exc:  # noqa: BLE001 - the user simulator's fault (an LLM error)
            failure, termination = _failure("user", exc), "user_error"
            break
        messages.append({"role": "user", "content": reply})
        steps.append(Step(len(steps), "user", content=reply[:4000]))
        if STOP in reply:
            termination = "user_stop"
            break
    final_state, final_hash = sandbox.get_state()
    reward, breakdown = score(task, final_state, messages, [o["result"].get("value") for o in observations],
                              termination, judge)
    if failure is not None:
        breakdown["failure"] = failure
    return EpisodeResult(messages=messages, steps=steps, final_state=final_state, final_hash=final_hash, reward=reward,
                         breakdown=breakdown, termination=termination, seconds=round(time.perf_counter() - started, 4),
                         seed=seed, tool_errors=errors)


def pass_hat_k(successes: int, trials: int, k: int) -> float:
    """τ-bench's pass^k for one task: C(c, k) / C(n, k)."""
    from math import comb

    if trials < k:
        return 0.0
    return comb(successes, k) / comb(trials, k)
