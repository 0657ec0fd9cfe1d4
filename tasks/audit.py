"""Reward audits: checks that flag unsound tasks (Django-free). Every flag here is blocking.

* ``not_solvable``: the oracle (gold chain, replayed with its own observations) does not earn 1.0;
* ``noop_gold``: s_gt equals s0 and nothing must be communicated, so doing nothing would pass;
* ``perturbation_passes``: the gold chain with one argument changed, one write dropped or one
  extra write still earns 1.0 (the reward is not sensitive);
* ``ungrounded_argument``: a literal argument of the gold chain is neither stated in the
  instruction nor taken from an earlier step's output;
* ``nondeterministic_replay``: two replays of the gold chain on s0 give two different hashes.
"""

from __future__ import annotations

import random
from typing import Any

from environments.runtime import statekit
from environments.runtime.executor import Sandbox

from .reward import compute_reward

from .rollout.episode import PERTURBATIONS, NullAgent, OracleAgent, PerturbedAgent, TaskSpec, perturb_chain, run_episode

FLAGS = ("not_solvable", "noop_gold", "perturbation_passes", "ungrounded_argument", "nondeterministic_replay")


def _literal_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def ungrounded_arguments(task: TaskSpec) -> list[str]:
    text = task.instruction.lower()
    missing = []
    for i, step in enumerate(task.gold_chain):
        for param, value in step["args"].items():
            if isinstance(value, dict) and "$ref" in value:
                continue  # obtainable through a tool from something stated
            if _literal_text(value).lower() not in text:
                missing.append(f"step {i} {step['tool']}.{param}={value!r}")
    return missing


def find_perturbations(task: TaskSpec, sandbox: Sandbox, attempts: int = 8) -> dict[str, list[dict[str, Any]]]:
    """For each kind, the first perturbation that changes what the rubric checks: a non-exempt
    column or row of the final state, or (read-only tasks) the values that must be communicated.
    A perturbation that only touches exempt columns is harmless by the task's own policy."""
    found: dict[str, list[dict[str, Any]]] = {}
    for kind in PERTURBATIONS:
        for attempt in range(attempts):
            plan = perturb_chain(task, kind, random.Random(f"{kind}:{attempt}"))
            if plan is None:
                break
            run = sandbox.run_sequence(plan, state=statekit.copy_state(task.s0), stop_on_failure=False,
                                       return_state=True)
            final = run["state"] if run["state"] is not None else task.s0
            values = " ".join(str(r.get("value")) for r in run["results"])
            rubric = compute_reward(final, task.s_gt, task.s0, task.schema, task.communicate_info, [values])
            if rubric.reward == 0.0:
                found[kind] = plan
                break
    return found


def audit(task: TaskSpec, sandbox: Sandbox) -> list[dict[str, Any]]:
    flags: list[dict[str, Any]] = []

    def flag(code: str, reason: str) -> None:
        flags.append({"code": code, "blocking": True, "reason": reason})

    oracle = run_episode(task, OracleAgent(task), sandbox)
    if oracle.reward != 1.0:
        flag("not_solvable", "; ".join(oracle.breakdown.get("reasons", [])[:3]) or oracle.termination)
    if statekit.state_hash(task.s_gt) == statekit.state_hash(task.s0) and not task.communicate_info:
        flag("noop_gold", "the gold chain changes nothing and there is nothing to tell the user")
    null = run_episode(task, NullAgent(task), sandbox)
    if null.reward != 0.0 and not any(f["code"] == "noop_gold" for f in flags):
        flag("noop_gold", "an agent that does nothing earns the reward")
    task.perturbations = find_perturbations(task, sandbox)
    for kind in task.perturbations:
        run = run_episode(task, PerturbedAgent(task, random.Random(0), kind=kind), sandbox)
        if run.reward == 1.0:
            flag("perturbation_passes", f"the gold chain with a {kind.replace('_', ' ')} still passes")
    if not task.perturbations:
        flag("perturbation_passes", "no perturbation of the gold chain (changed argument, dropped write, extra "
                                    "write) changes what the reward checks")
    missing = ungrounded_arguments(task)
    if missing:
        flag("ungrounded_argument", "not in the instruction: " + "; ".join(missing[:3]))
    hashes = set()
    for _ in range(2):
        replay = sandbox.run_sequence(task.gold_chain, state=statekit.copy_state(task.s0))
        hashes.add(replay["state_hash"])
    if len(hashes) != 1 or statekit.state_hash(task.s_gt) not in hashes:
        flag("nondeterministic_replay", f"replays gave {len(hashes)} different final states")
    return flags
