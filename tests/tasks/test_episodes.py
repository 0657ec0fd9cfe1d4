"""Episodes: agents, the scripted user, termination reasons, OpenAI-format messages, pass^k."""

import json
import random

from tasks.rollout.episode import (NullAgent, OracleAgent, PerturbedAgent, RandomAgent, pass_hat_k, run_episode)


def test_the_oracle_earns_the_reward_with_openai_format_messages(notes_task, notes_sandbox):
    ep = run_episode(notes_task, OracleAgent(notes_task), notes_sandbox)
    assert (ep.reward, ep.termination) == (1.0, "agent_stop")
    call = next(m for m in ep.messages if m.get("tool_calls"))
    assert call["tool_calls"][0]["type"] == "function"
    assert json.loads(call["tool_calls"][0]["function"]["arguments"]) == {"note_id": "n1"}
    reply = ep.messages[ep.messages.index(call) + 1]
    assert reply["role"] == "tool" and reply["tool_call_id"] == call["tool_calls"][0]["id"]
    write = ep.steps[1]
    assert write.diff == {"notes": {"added": {}, "removed": {}, "changed": {"n1": {"stars": [3, 5]}}}}


def test_null_random_and_perturbed_agents_earn_nothing(notes_task, notes_sandbox):
    from tasks.audit import find_perturbations

    notes_task.perturbations = find_perturbations(notes_task, notes_sandbox)
    assert run_episode(notes_task, NullAgent(notes_task), notes_sandbox).reward == 0.0
    assert run_episode(notes_task, RandomAgent(notes_task, random.Random(1)), notes_sandbox).reward == 0.0
    for kind in notes_task.perturbations:
        agent = PerturbedAgent(notes_task, random.Random(0), kind=kind)
        assert run_episode(notes_task, agent, notes_sandbox).reward == 0.0, kind


def test_unknown_tools_and_errors_end_the_episode_at_the_cap(notes_task, notes_sandbox):
    class Clumsy:
        name = "clumsy"

        def act(self, messages, observations):
            return {"tool_calls": [{"name": "drop_database", "arguments": {}}]}

    ep = run_episode(notes_task, Clumsy(), notes_sandbox, max_errors=3)
    assert ep.termination == "too_many_errors" and ep.reward == 0.0
    assert ep.messages[-1]["content"].startswith("Error: UnknownTool")


def test_a_crashing_agent_is_an_agent_error(notes_task, notes_sandbox):
    class Broken:
        name = "broken"

        def act(self, messages, observations):
            raise RuntimeError("model endpoint returned garbage")

    ep = run_episode(notes_task, Broken(), notes_sandbox)
    assert ep.termination == "agent_error" and ep.reward == 0.0


def test_pass_hat_k():
    assert pass_hat_k(4, 4, 4) == 1.0
    assert pass_hat_k(3, 4, 1) == 0.75
    assert pass_hat_k(3, 4, 2) == 0.5
    assert pass_hat_k(1, 4, 2) == 0.0
