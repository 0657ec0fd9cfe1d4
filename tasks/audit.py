"""Reward audits: checks that flag unsound tasks (Django-free). Every flag here is blocking and
carries its reason.

* ``not_solvable``: the oracle, playing through the conversational user, does not earn 1.0;
* ``noop_gold``: a write task whose gold run changes nothing, or a task an agent that does nothing
  passes;
* ``perturbation_passes``: the gold chain with one argument changed, one write dropped or one
  extra write still earns 1.0 (or no perturbation changes what the reward checks);
* ``ambiguous``: another row of s0 fits everything the scenario says about the target as well as
  the target does (or the customer's e-mail is not unique);
* ``leak``: something the user says names a tool, a parameter of the gold chain, or an internal id;
* ``unreachable``: a literal of the gold chain is an internal id or a value the user never gives
  (ids must be found with tools, from what the user knows);
* ``unsound_refusal``: the forbidden action of a refusal task is refused neither by its tool nor by
  the domain's policy;
* ``nondeterministic_replay``: two replays of the gold chain on s0 give two different states.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
import re
from collections.abc import Iterator
from typing import Any

from environments.runtime import statekit
from environments.runtime.executor import Sandbox

from . import phrasing
from .instantiation.view import DomainView
from .rollout.agents import NullAgent, OracleAgent, PerturbedAgent
from .rollout.episode import run_episode
from .spec import TaskSpec

FLAGS = ("not_solvable", "noop_gold", "perturbation_passes", "ambiguous", "leak", "unreachable", "unsound_refusal",
         "nondeterministic_replay")
PERTURBATIONS = ("changed_argument", "dropped_write", "extra_write")
_SELECTORS = ("$pick", "$all", "$sum", "$min", "$max")


# ---------------------------------------------------------------------------------------------
# Perturbations


def literal_paths(args: Any, path: tuple = ()) -> Iterator[tuple]:
    """Paths to the literal values of a step's arguments, including the values a selection
    matches on (never the step numbers or list paths of references)."""
    if isinstance(args, dict):
        kind = next((k for k in _SELECTORS if k in args), None)
        if kind:
            yield from literal_paths(args[kind][2], path + (kind, 2))
            return
        if set(args) == {"$ref"}:
            return
        for key, value in args.items():
            if key in ("$in", "$on", "$ne"):
                yield from literal_paths(value, path + (key,)) if isinstance(value, (dict, list)) else [path + (key,)]
            else:
                yield from literal_paths(value, path + (key,))
    elif isinstance(args, list):
        for i, value in enumerate(args):
            yield from literal_paths(value, path + (i,))
    else:
        yield path


def _get(value: Any, path: tuple) -> Any:
    for part in path:
        value = value[part]
    return value


def _set(value: Any, path: tuple, new: Any) -> None:
    for part in path[:-1]:
        value = value[part]
    value[path[-1]] = new


def _changed(value: Any, task: TaskSpec, rng: random.Random) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return round(value + 1.0, 2)
    if isinstance(value, str):
        moment = phrasing.parse_instant(value)
        if moment is not None:
            return (moment + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        day = phrasing.parse_date(value)
        if day is not None and len(value) == 10:
            return (day + dt.timedelta(days=1)).isoformat()
        siblings = sorted({str(v) for rows in task.s0.values() for row in rows.values() for v in row.values()
                           if isinstance(v, str) and v != value and _same_shape(v, value)})
        return rng.choice(siblings) if siblings else value + " (changed)"
    return value


def _same_shape(a: str, b: str) -> bool:
    if "@" in b:
        return "@" in a
    return a.split("_")[0] == b.split("_")[0] if "_" in b else len(a.split()) == len(b.split()) and a[:1].isupper() == b[:1].isupper()


def perturb_chain(task: TaskSpec, kind: str, rng: random.Random) -> list[dict[str, Any]] | None:
    """The gold chain with one perturbation; None when it does not apply to this chain."""
    chain = copy.deepcopy(task.gold_chain)
    writes = [i for i, s in enumerate(chain) if s["tool"] in task.mutating]
    if kind == "changed_argument":
        candidates = [(i, p) for i, s in enumerate(chain) if (i in writes or not writes or task.kind != "write")
                      for p in literal_paths(s["args"])]
        if task.kind == "write" and not candidates:
            candidates = [(i, p) for i, s in enumerate(chain) for p in literal_paths(s["args"])]
        if not candidates:
            return None
        i, path = rng.choice(candidates)
        old = _get(chain[i]["args"], path)
        new = _changed(old, task, rng)
        if new == old:
            return None
        _set(chain[i]["args"], path, new)
        return chain
    if kind == "dropped_write":
        if not writes:
            return None
        drop = rng.choice(writes)
        return [s for i, s in enumerate(chain) if i != drop]
    if kind == "extra_write":
        extra = sorted(t for t in task.subgraph if t in task.positive_args and t in task.mutating)
        if not extra:
            return None
        name = rng.choice(extra)
        return chain + [{"tool": name, "args": dict(task.positive_args[name])}]
    raise ValueError(kind)


def find_perturbations(task: TaskSpec, sandbox: Sandbox, attempts: int = 4) -> dict[str, list[dict[str, Any]]]:
    """For each kind, the first perturbation that changes what the reward checks (played in full
    through the user by the perturbed agent, it earns 0)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for kind in PERTURBATIONS:
        for attempt in range(attempts):
            plan = perturb_chain(task, kind, random.Random(f"{kind}:{attempt}"))
            if plan is None:
                break
            trial = copy.copy(task)
            trial.perturbations = {kind: plan}
            if run_episode(trial, PerturbedAgent(trial, random.Random(0), kind=kind), sandbox).reward == 0.0:
                found[kind] = plan
                break
    return found


# ---------------------------------------------------------------------------------------------
# Ambiguity, leaks, reachability


def _row_fits(row: dict[str, Any], where: dict[str, Any]) -> bool:
    for column, wanted in where.items():
        value = row.get(column)
        if isinstance(wanted, dict) and "$on" in wanted:
            if not (isinstance(value, str) and value[:10] == wanted["$on"]):
                return False
        elif isinstance(wanted, list):
            if not any(statekit.same_value(value, w) for w in wanted):
                return False
        elif not statekit.same_value(value, wanted):
            return False
    return True


def fitting_rows(s0: dict[str, Any], target: dict[str, Any]) -> list[str]:
    """Rows of s0 that fit a target's description (its columns, and its joined rows' columns)."""
    found = []
    for pk, row in (s0.get(target["table"]) or {}).items():
        if not _row_fits(row, target["where"]):
            continue
        if all(_row_fits((s0.get(v["table"]) or {}).get(row.get(v["fk"])) or {}, v["where"]) for v in target["via"]):
            found.append(pk)
    return found


def ambiguities(task: TaskSpec, view: DomainView) -> list[str]:
    problems = []
    for target in task.evaluation.get("targets") or []:
        fits = fitting_rows(task.s0, target)
        if fits != [target["pk"]]:
            problems.append(f"{target['description']}: {len(fits)} rows of {target['table']} fit "
                            f"({', '.join(map(str, fits[:3]))})")
    user = task.user_profile
    email = user.get("email")
    if email and user.get("table"):
        same = [pk for pk, row in (task.s0.get(user["table"]) or {}).items()
                if any(isinstance(v, str) and v.lower() == str(email).lower() for k, v in row.items() if "email" in k)]
        if len(same) != 1:
            problems.append(f"{len(same)} customers share the e-mail {email}")
    return problems


def _names(task: TaskSpec, view: DomainView) -> tuple[set[str], set[str]]:
    """Every tool name, and the parameters the gold chain passes (what must not be read aloud)."""
    return set(view.tools), {p for step in task.gold_chain for p in step["args"]}


def leaks(task: TaskSpec, view: DomainView) -> list[str]:
    """What the user says must not name a tool, a parameter of the gold chain or an internal id."""
    if task.script is None:
        return []
    tools, params = _names(task, view)
    ids = {str(pk) for rows in task.s0.values() for pk in rows}
    found = []
    for text in task.script.user_texts():
        low = text.lower()
        for tool in tools:
            if tool in low or phrasing.contains_word(low, tool.replace("_", " ")):
                found.append(f"names the tool {tool}: {text!r}")
        for param in params:
            if ("_" in param and param in low) or ("_" not in param and phrasing.contains_word(low, param)):
                found.append(f"names the parameter {param}: {text!r}")
        for token in re.findall(r"[a-z]{2,4}_[0-9a-z]{5,}", low):
            if token in ids:
                found.append(f"says the internal id {token}: {text!r}")
    return found


def unreachable(task: TaskSpec) -> list[str]:
    """Literal gold values must come from what the user says; ids must be found with tools."""
    said = [v for f in (task.script.facts if task.script else []) for v in f.values]
    ids = {str(pk) for rows in task.s0.values() for pk in rows}
    problems = []
    for i, step in enumerate(task.gold_chain):
        for path in literal_paths(step["args"]):
            value = _get(step["args"], path)
            if isinstance(value, str) and value in ids:
                problems.append(f"step {i} {step['tool']} uses the internal id {value} as a literal")
            elif not any(statekit.same_value(value, s) for s in said):
                problems.append(f"step {i} {step['tool']}: {'.'.join(map(str, path))}={value!r} is never given by the user")
    return problems


def refusal_soundness(task: TaskSpec, sandbox: Sandbox, policy: str) -> str | None:
    refusal = task.refusal
    if task.kind != "refusal" or not refusal:
        return None
    forbidden = refusal["forbidden"]
    run = sandbox.run_sequence([forbidden], state=statekit.copy_state(task.s0), stop_on_failure=False)
    refused_by_tool = run["results"][0]["outcome"] == "anticipated_rejection"
    in_policy = refusal.get("rule", "").lower() in policy.lower() if refusal.get("rule") else False
    if refusal.get("by") == "tool" and not refused_by_tool:
        return f"the tool {forbidden['tool']} accepts the forbidden call ({run['results'][0]['outcome']})"
    if not refused_by_tool and not in_policy:
        return f"neither {forbidden['tool']} nor the policy forbids it (policy lacks {refusal.get('rule')!r})"
    return None


# ---------------------------------------------------------------------------------------------


def audit(task: TaskSpec, sandbox: Sandbox, view: DomainView) -> list[dict[str, Any]]:
    flags: list[dict[str, Any]] = []

    def flag(code: str, reason: str) -> None:
        flags.append({"code": code, "blocking": True, "reason": reason})

    oracle = run_episode(task, OracleAgent(task), sandbox)
    if oracle.reward != 1.0:
        flag("not_solvable", "; ".join(oracle.breakdown.get("reasons", [])[:3]) or oracle.termination)
    unchanged = statekit.state_hash(task.s_gt) == statekit.state_hash(task.s0)
    if task.kind == "write" and unchanged:
        flag("noop_gold", "the gold chain of a write task changes nothing")
    if task.kind != "write" and not unchanged:
        flag("noop_gold", f"the gold chain of a {task.kind} task changes the state")
    null = run_episode(task, NullAgent(task), sandbox)
    if null.reward != 0.0:
        flag("noop_gold", "an agent that does nothing earns the reward")
    task.perturbations = find_perturbations(task, sandbox)
    if not task.perturbations:
        flag("perturbation_passes", "no perturbation of the gold chain (changed argument, dropped write, extra "
                                    "write) changes what the reward checks")
    for problem in ambiguities(task, view)[:3]:
        flag("ambiguous", problem)
    found = leaks(task, view)
    if found:
        flag("leak", "; ".join(found[:3]))
    missing = unreachable(task)
    if missing:
        flag("unreachable", "; ".join(missing[:3]))
    unsound = refusal_soundness(task, sandbox, view.policy)
    if unsound:
        flag("unsound_refusal", unsound)
    hashes = set()
    for _ in range(2):
        replay = sandbox.run_sequence(task.gold_chain, state=statekit.copy_state(task.s0))
        hashes.add(replay["state_hash"])
    if len(hashes) != 1 or statekit.state_hash(task.s_gt) not in hashes:
        flag("nondeterministic_replay", f"replays gave {len(hashes)} different final states")
    return flags
