"""Write tests/llm/recordings_tasks/*.json: the answers a strong model gives for the phase-2 stages and
for a rollout, derived from the tasks the procedural planner makes for the test domain (seed 1001).

    cd /work/main && .venv/bin/python -m tests.llm.make_task_recordings

The tests load the JSON files, not this script; run it again after a change to the planner or the
test domain (the item seeds below are the ones ``start_task_batch`` gives).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from environments.runtime.executor import Sandbox, SandboxConfig
from tasks.instantiation import Instantiator, domain_bundle, view_from_result
from tasks.instantiation.plan import Script
from tests.conftest import sandbox_mode, synthesized

OUT = Path(__file__).resolve().parent / "recordings_tasks"
LEVELS = ("easy", "medium", "hard")
SCENARIO_SEED, FULL_SEED, ROLLOUT_SEED = 7, 10, 11  # the --seed of each test's make_tasks
OFFSETS = {"scenario": 10**9, "full": 2 * 10**9, "procedural": 0}  # tasks.services.LLM_SEED_OFFSETS
MODELS = {role: f"fake-{role}" for role in ("chain_writer", "state_builder", "scenario_writer", "gate", "agent", "user")}


def item_seed(kind: str, seed: int, index: int) -> int:
    return OFFSETS[kind] + seed * 1000 + index


def strong_scenario(draft: Any) -> dict[str, Any]:
    """A τ²-shaped scenario as a careful writer words it: the facts, no ids, no answers."""
    script = Script.from_dict(draft.script)
    name = draft.user_profile.get("name") or "the customer"
    wants = [a["label"] for a in draft.communicate_info]
    known = " ".join(f.known for f in script.facts)
    steps = ["Start by saying what you need in a sentence or two, without giving every detail at once.",
             "Give your details one at a time, only when the agent asks for them.",
             "You have no reference numbers or internal ids; if asked for one, say you do not have it."]
    if draft.kind == "refusal":
        steps.append("If the agent says it cannot be done, ask once whether there is any way, then accept it and "
                     "end the conversation with ###STOP###.")
    elif wants:
        steps.append("Once you have been told " + " and ".join(wants) + ", thank the agent and end with ###STOP###.")
    else:
        steps.append("When the agent sums up the change and asks you to confirm, say yes if it is exactly what you "
                     "want; once it is done, thank them and end with ###STOP###.")
    reason = draft.user_scenario["instructions"]["reason_for_call"]
    return {"persona": f"{name}: busy, polite and to the point; prefers short answers.",
            "reason_for_call": reason.replace("You want to", "You are getting in touch to", 1),
            "known_info": known, "unknown_info": "You do not know any account number, booking reference or "
                                                 "other internal identifier.",
            "task_instructions": " ".join(steps)}


def leaking_scenario(draft: Any) -> dict[str, Any]:
    scenario = strong_scenario(draft)
    scenario["known_info"] += f" Your customer number is {draft.user_profile['pk']}."  # an internal id
    return scenario


def near_miss(draft: Any, view: Any) -> list[dict[str, Any]]:
    """One row like the target record, with one described detail changed."""
    target = (draft.evaluation.get("targets") or [None])[0]
    if not target:
        return []
    rows = draft.s0[target["table"]]
    row = dict(rows[target["pk"]])
    pk_col = view.schema["tables"][target["table"]]["pk"]
    row[pk_col] = f"{str(row[pk_col]).split('_')[0]}_llm0001"
    for column in target["where"]:
        others = [r[column] for r in rows.values() if r.get(column) != row.get(column)]
        if others:
            row[column] = others[0]
            return [{"table": target["table"], "row": row, "why": f"another {column.replace('_', ' ')}"}]
    return []


def rollout_script(draft: Any) -> dict[str, list[dict[str, Any]]]:
    """The agent and the user of one conversation on ``draft`` (a write task whose one write is last)."""
    script = Script.from_dict(draft.script)
    email = next(f for f in script.facts if f.key == "email")
    calls = draft.gold_calls
    last = len(calls)
    proposal = f"I can {script.writes[0].summary}. Shall I go ahead?"
    done = " ".join(w.done for w in script.writes)
    ask = "Could you give me the e-mail address on your account, please?"
    yes = "Yes, please go ahead with that."
    tool = (lambda i: {"tool_calls": [{"name": calls[i]["tool"], "arguments": calls[i]["args"]}]})
    agent = [{"when": [f'"call_{last}"'], "answers": [{"content": done}]},
             {"when": [yes], "answers": [tool(last - 1)]},
             {"when": [f'"call_{last - 1}"'], "answers": [{"content": proposal}]}]
    agent += [{"when": [f'"call_{i}"'], "answers": [tool(i)]} for i in range(last - 2, 0, -1)]
    agent += [{"when": [email.say], "answers": [tool(0)]}, {"answers": [{"content": ask}]}]
    user = [{"when": [done], "answers": [{"content": f"That's great, thank you. ###STOP###"}]},
            {"when": [proposal], "answers": [{"content": yes}]},
            {"when": [ask], "answers": [{"content": email.say}]},
            {"answers": [{"content": script.opening}]}]
    return {MODELS["agent"]: agent, MODELS["user"]: user}


def main() -> None:
    view = view_from_result(synthesized(1001))
    OUT.mkdir(exist_ok=True)
    with Sandbox(domain_bundle(view), SandboxConfig(mode=sandbox_mode())) as sandbox:
        make = (lambda kind, seed, i: Instantiator(view, sandbox).build(item_seed(kind, seed, i), LEVELS[i % 3]))
        # --scenarios llm, two tasks: the first gets a good scenario, the second one that leaks (twice).
        good, bad = make("scenario", SCENARIO_SEED, 0), make("scenario", SCENARIO_SEED, 1)
        assert good.user_profile["email"] != bad.user_profile["email"]
        scenarios = {MODELS["scenario_writer"]: [
            {"when": [good.user_profile["email"]], "answers": [{"json": strong_scenario(good)}]},
            {"when": [bad.user_profile["email"]], "answers": [{"json": leaking_scenario(bad)}]}]}
        expected = {"good": strong_scenario(good), "leaking_customer": bad.user_profile["pk"]}
        (OUT / "scenarios.json").write_text(json.dumps({"script": scenarios, "expected": expected}, indent=1))
        # --backend llm, one task: chain, near miss, scenario, gate.
        full = make("full", FULL_SEED, 0)
        email = full.user_profile["email"]
        script = {MODELS["chain_writer"]: [{"when": [email], "answers": [{"json": {"steps": full.gold_chain}}]}],
                  MODELS["state_builder"]: [{"answers": [{"json": {"distractors": near_miss(full, view)}}]}],
                  MODELS["scenario_writer"]: [{"when": [email], "answers": [{"json": strong_scenario(full)}]}],
                  MODELS["gate"]: [{"answers": [{"json": {"p": 0.8, "reason": "Many unused tools are feasible and "
                                                                      "H is still small: add a chain."}}]}]}
        (OUT / "full.json").write_text(json.dumps({"script": script, "expected": {
            "scenario": strong_scenario(full), "chain": full.gold_chain}}, indent=1))
        # rollout --agent llm --user llm on the one task of make_tasks --per-domain 1 --seed ROLLOUT_SEED.
        task = make("procedural", ROLLOUT_SEED, 0)
        writes = [i for i, s in enumerate(task.gold_chain) if view.tools[s["tool"]].mutates]
        assert task.kind == "write" and writes == [len(task.gold_chain) - 1], (task.kind, writes)
        (OUT / "rollout.json").write_text(json.dumps({"script": rollout_script(task)}, indent=1))
    print("wrote", ", ".join(sorted(p.name for p in OUT.glob("*.json"))))


if __name__ == "__main__":
    main()
