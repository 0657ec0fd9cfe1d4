"""Episodes through the conversational user: the agents that must earn the reward do, the probes
that must not do not; messages in the OpenAI format; termination reasons; pass^k."""

import json
import random

import pytest

from tasks.audit import find_perturbations
from tasks.rollout.agents import AGENTS, OracleAgent
from tasks.rollout.episode import pass_hat_k, run_episode
from tasks.rollout.user import STOP

KINDS = ("write", "question", "refusal")


@pytest.mark.parametrize("kind", KINDS)
def test_the_oracle_and_a_confirming_agent_earn_the_reward_through_the_conversation(engine, kind):
    _draft, spec = engine.task(kind)
    for name in ("oracle", "confirming"):
        ep = run_episode(spec, AGENTS[name](spec), engine.sandbox)
        assert ep.reward == 1.0, (name, ep.breakdown["reasons"], [m.get("content") for m in ep.messages])
        assert ep.termination in ("user_stop", "agent_stop")
        assert ep.messages[0] == {"role": "system", "content": spec.policy}  # the agent's prompt is the policy
        assert ep.messages[1]["content"] == spec.script.opening
    if kind == "write":
        confirming = run_episode(spec, AGENTS["confirming"](spec), engine.sandbox)
        asked = [m["content"] for m in confirming.messages if m["role"] == "assistant" and "Shall I" in (m["content"] or "")]
        writes = sum(1 for s in spec.gold_chain if s["tool"] in spec.mutating)
        assert len(asked) == writes


@pytest.mark.parametrize("kind", KINDS)
def test_probes_that_must_fail_earn_nothing(engine, kind):
    _draft, spec = engine.task(kind)
    spec.perturbations = find_perturbations(spec, engine.sandbox)
    for name in ("null", "random", "perturbed", "collateral", "wrong_pick"):
        ep = run_episode(spec, AGENTS[name](spec, random.Random(3)), engine.sandbox)
        assert ep.reward == 0.0, (kind, name, ep.breakdown["reasons"])


def test_messages_are_in_the_openai_format_with_per_step_diffs(engine):
    _draft, spec = engine.task("write")
    ep = run_episode(spec, OracleAgent(spec), engine.sandbox)
    call = next(m for m in ep.messages if m.get("tool_calls"))
    assert call["tool_calls"][0]["type"] == "function"
    assert isinstance(json.loads(call["tool_calls"][0]["function"]["arguments"]), dict)
    reply = ep.messages[ep.messages.index(call) + 1]
    assert reply["role"] == "tool" and reply["tool_call_id"] == call["tool_calls"][0]["id"]
    writes = [s for s in ep.steps if s.kind == "tool_call" and s.tool in spec.mutating]
    assert writes and all(s.diff for s in writes)
    assert [s.kind for s in ep.steps][0] == "user" and "message" in [s.kind for s in ep.steps]


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


def test_an_agent_that_never_stops_is_cut_at_max_steps(engine):
    _draft, spec = engine.task("question")

    class Chatty:
        name = "chatty"

        def act(self, messages, observations):
            return {"content": "Could you tell me more?"}

    ep = run_episode(spec, Chatty(), engine.sandbox, max_steps=6)
    assert ep.termination == "max_steps" and ep.reward == 0.0
    assert all(STOP not in m["content"] for m in ep.messages if m["role"] == "user")


def test_pass_hat_k():
    assert pass_hat_k(4, 4, 4) == 1.0
    assert pass_hat_k(3, 4, 1) == 0.75
    assert pass_hat_k(3, 4, 2) == 0.5
    assert pass_hat_k(1, 4, 2) == 0.0
