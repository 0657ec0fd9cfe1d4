"""Write tests/llm/recordings_e2e/pet_care_clinic.json: the phase-2 and rollout answers of the end-to-end
test (tests/llm/test_llm_end_to_end.py) on the LLM-synthesized "Pet Care Clinic" domain.

    cd /work/main && .venv/bin/python -m tests.llm.make_e2e_recordings

The synthesis answers are tests/llm/recordings/pet_care_clinic.py's (the test serves them itself). The
task's concrete values (owner, pet, slot ids, the day) come from the seeded procedural planner running
on that domain, so this script synthesizes the domain in memory from those recordings (the same seed
``synthesize --seed 1`` gives), builds the task ``make_tasks --scenarios llm --per-domain 1`` makes for
the first batch seed whose task is a booking, and writes what a strong model answers for it:

* the scenario writer: a τ²-shaped scenario grounded in the task's facts (checked here with the same
  leak / answer-key / grounding checks the pipeline applies);
* the agent: asks for the e-mail, calls the gold chain with the literal arguments a model reads off
  the tools' outputs, proposes the booking, books after the user's yes, reports it;
* the user: opens with the request, gives the e-mail when asked, says yes, thanks and stops.

The test loads the JSON, not this script; run it again after a change to the planner, the pet-care
recordings or the synthesis pipeline (the test fails at once with a 404 naming the missing answer).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from environments.llm import LLMClient, settings_from
from environments.llm.client import MemoryStore
from environments.runtime.executor import Sandbox, SandboxConfig
from environments.synthesis.interface import get_backend
from environments.synthesis.pipeline import synthesize_domain
from tasks.instantiation import Instantiator, domain_bundle, view_from_result
from tasks.instantiation.llm import scenario_problems
from tasks.instantiation.plan import Script
from tests.conftest import sandbox_mode
from tests.llm.fake_openai import FakeOpenAI
from tests.llm.recordings import pet_care_clinic as rec

OUT = Path(__file__).resolve().parent / "recordings_e2e" / "pet_care_clinic.json"
PREFIX = "e2e-"  # every role's model is e2e-<role>
DOMAIN_NAME = "Pet Care Clinic"
SYNTHESIS_SEED = 1  # synthesize --seed (the default); the domain's seed is SYNTHESIS_SEED * 1000
SCENARIO_OFFSET = 10**9  # tasks.services.LLM_SEED_OFFSETS["scenario"]
STOP = "###STOP###"
TASK_ROLES = ("scenario_writer", "agent", "user")


def models() -> dict[str, str]:
    """Each role its own model name, the synthesis roles' and the task roles'."""
    return {**rec.role_models(PREFIX), **{role: f"{PREFIX}{role}" for role in TASK_ROLES}}


def synthesize_view() -> Any:
    with FakeOpenAI(rec.script(PREFIX)) as fake:
        settings = settings_from({"base_url": fake.base_url, "api_key": "test", "model": f"{PREFIX}default",
                                  "role_models": models(), "timeout": 5.0})
        backend = get_backend("llm", client=LLMClient(settings, MemoryStore()), domain_name=DOMAIN_NAME)
        result = synthesize_domain(SYNTHESIS_SEED * 1000, backend, SandboxConfig(mode=sandbox_mode()))
    assert result.spec.slug == "pet-care-clinic", result.spec.slug
    return view_from_result(result)


def spoken(instant: str) -> str:
    moment = dt.datetime.fromisoformat(instant.replace("Z", "+00:00"))
    return f"{moment:%A} {moment.day} {moment:%B} at {moment:%H:%M}"


def conversation(draft: Any, view: Any) -> dict[str, Any]:
    """The scenario, the agent's and the user's answers for a booking task."""
    script = Script.from_dict(draft.script)
    facts = {f.key: f for f in script.facts}
    name, email = draft.user_profile["name"], draft.user_profile["email"]
    pet = facts["pets:name"].values[0]
    instant = next(v for v in facts["when"].values if "T" in str(v))
    when = spoken(instant)
    calls = draft.gold_calls
    assert [c["tool"] for c in calls] == ["find_owner_by_email", "list_owner_pets", "search_care_slots",
                                          "book_care_slot"], calls
    slot = next(s for s in draft.gold_outputs[2]["items"] if s["slot_id"] == calls[3]["args"]["slot_id"])
    places = calls[3]["args"]["quantity"]
    assert places == 1 and slot["starts_at"] == instant, (places, slot)
    scenario = {
        "persona": f"{name}, who brings {pet} to the clinic; friendly and a little chatty, but answers what "
                   "the agent asks.",
        "reason_for_call": f"You want to book {pet} onto the clinic's care slot on {when}: your plans for that "
                           "day just freed up and you would rather not wait for a later appointment.",
        "known_info": f"Your e-mail address is {email}. Your name is {name}. The booking is for your pet {pet}. "
                      f"The slot you want is the one on {when}. You want one place.",
        "unknown_info": "You do not know your owner number, your pet's record number or any other internal "
                        "reference of the clinic.",
        "task_instructions": f"Open by saying in one sentence that you would like to book the slot on {when} "
                             f"for {pet}. Give your e-mail address only when the agent asks for it, and any "
                             "other detail one at a time when asked. You have no reference numbers or ids; if "
                             "asked for one, say you do not have it. When the agent describes the booking and "
                             f"asks you to confirm, say yes only if it is one place for {pet} on {when}; once the "
                             f"agent says it is booked, thank them and end the conversation with {STOP}.",
    }
    structured = {"persona": scenario["persona"], "instructions": {"domain": view.name, **{
        k: v for k, v in scenario.items() if k != "persona"}}}
    problems = scenario_problems(structured, draft, view)
    assert not problems, problems

    first = name.split()[0]
    opening = f"Hi! I'd like to book the care slot on {when} for my pet {pet}, please."
    ask = "I'd be happy to help with that. Could you tell me the e-mail address on your account, please?"
    says_email = f"Sure, it's {email}."
    proposal = (f"Thank you, {first}. The {slot['service']} slot on {when} has places left. Shall I book one "
                f"place on it for {pet}?")
    yes = f"Yes, please book it for {pet}."
    done = f"All set: {pet} is booked on the {slot['service']} slot on {when}."
    tool = (lambda i: {"tool_calls": [{"name": calls[i]["tool"], "arguments": calls[i]["args"]}]})
    # Rules are tried in order and each matches the whole conversation so far: the latest moment first.
    agent = [{"when": ['"call_4"'], "answers": [{"content": done}]},
             {"when": [yes], "answers": [tool(3)]},
             {"when": ['"call_3"'], "answers": [{"content": proposal}]},
             {"when": ['"call_2"'], "answers": [tool(2)]},
             {"when": ['"call_1"'], "answers": [tool(1)]},
             {"when": [says_email], "answers": [tool(0)]},
             {"answers": [{"content": ask}]}]
    user = [{"when": [done], "answers": [{"content": f"Wonderful, thank you so much! {STOP}"}]},
            {"when": [proposal], "answers": [{"content": yes}]},
            {"when": [ask], "answers": [{"content": says_email}]},
            {"answers": [{"content": opening}]}]
    writer = [{"when": [email], "answers": [{"json": scenario}]}]
    return {"script": {f"{PREFIX}scenario_writer": writer, f"{PREFIX}agent": agent, f"{PREFIX}user": user},
            "expected": {"scenario": structured, "gold_calls": calls, "intent": draft.intent}}


def main() -> None:
    view = synthesize_view()
    with Sandbox(domain_bundle(view), SandboxConfig(mode=sandbox_mode())) as sandbox:
        for seed in range(1, 50):  # make_tasks --seed: the first whose one ("easy") task is a booking
            draft = Instantiator(view, sandbox).build(SCENARIO_OFFSET + seed * 1000, "easy")
            if draft.intent == "book:appointments" and draft.kind == "write":
                break
        else:
            raise SystemExit("no booking task among make_tasks seeds 1..49")
        recorded = conversation(draft, view)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"make_tasks_seed": seed, "synthesis_seed": SYNTHESIS_SEED, "models": models(),
                               **recorded}, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT} (make_tasks --seed {seed})")


if __name__ == "__main__":
    main()
