"""The LLM judge of ``semantic`` texts (tasks/judge.py) against a real OpenAI-compatible HTTP server
(tests/llm/fake_openai.py): it decides only the pairs the rules reject for overlap, never a veto;
a model failure leaves the rules' decision; answers are cached; sessions and rollouts use it when
``SCALEENV_SEMANTIC_JUDGE=llm``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from environments.llm import LLMClient, MemoryStore, settings_from
from tasks.judge import LLMJudge, RecordingJudge
from tasks.reward import compute_reward
from tasks.semantic import explain, semantic_match
from tests.llm.fake_openai import FakeOpenAI
from tests.tasks.test_reward import GOLD, S0, SCHEMA, agent_state

JUDGE_MODEL = "judge-model"
SAME = {"json": {"same_meaning": True, "reason": "the same request in other words"}}
DIFFERENT = {"json": {"same_meaning": False, "reason": "a detail is missing"}}
# Rejected by the rules for overlap alone (docs/semantic.md: an idiom the lexicon does not hold).
GOLD_TEXT, PARAPHRASE = "The restaurant lost our reservation", "The restaurant had no record of our booking"


def client_for(fake: FakeOpenAI, **overrides) -> LLMClient:
    values = {"base_url": fake.base_url, "api_key": "test", "model": "fake-default",
              "role_models": {"semantic_judge": JUDGE_MODEL}, "timeout": 2.0, "max_retries": 1, "max_backoff": 0.01,
              "validation_retries": 1, "concurrency": 2, "slots_dir": "", **overrides}
    return LLMClient(settings_from(values), MemoryStore())


def test_the_judge_decides_a_pair_the_rules_reject_for_overlap_alone_and_is_asked_once():
    assert explain(GOLD_TEXT, PARAPHRASE)["overrulable"] and not semantic_match(GOLD_TEXT, PARAPHRASE)
    with FakeOpenAI({JUDGE_MODEL: [{"when": ["no record of our booking"], "answers": [SAME]}]}) as fake:
        judge = LLMJudge(client_for(fake))
        assert semantic_match(GOLD_TEXT, PARAPHRASE, judge) is True
        assert semantic_match(GOLD_TEXT, PARAPHRASE, judge) is True
        assert fake.count(JUDGE_MODEL) == 1  # the second time from the judge's memo
        sent = fake.requests[0]["messages"]
        # The texts reach the model quoted as JSON strings (data, not instructions).
        assert json.dumps(GOLD_TEXT) in sent[-1]["content"] and json.dumps(PARAPHRASE) in sent[-1]["content"]
        assert judge.decision(GOLD_TEXT, PARAPHRASE) == {"same": True, "reason": "the same request in other words"}


def test_the_model_can_also_say_they_differ():
    with FakeOpenAI({JUDGE_MODEL: [{"answers": [DIFFERENT]}]}) as fake:
        assert semantic_match(GOLD_TEXT, PARAPHRASE, LLMJudge(client_for(fake))) is False
        assert fake.count() == 1


@pytest.mark.parametrize("gold, candidate", [
    ("Room 214 has no hot water", "Room 241 has no hot water"),                  # a number
    ("Flagged as a priority customer", "Flagged as not a priority customer"),    # a negation
    ("Pain in the left knee", "Pain in the right knee"),                         # an opposite
    ("Refund for the Sony headphones", "Refund for the Bose headphones"),        # a name
    ("Buyer sent payment to the seller", "Seller sent payment to the buyer"),    # swapped roles
    ("Replace the kitchen tap", "Replace the kitchen tap and the shower head"),  # a joined detail
])
def test_a_veto_is_never_sent_to_the_model_even_one_that_would_accept_it(gold, candidate):
    with FakeOpenAI({JUDGE_MODEL: [{"answers": [SAME]}]}) as fake:
        assert semantic_match(gold, candidate, LLMJudge(client_for(fake))) is False
        assert fake.count() == 0


def test_pairs_the_rules_accept_are_not_sent_either():
    with FakeOpenAI({JUDGE_MODEL: [{"answers": [DIFFERENT]}]}) as fake:
        assert semantic_match("The heater is broken", "The heater is not working", LLMJudge(client_for(fake)))
        assert fake.count() == 0


@pytest.mark.parametrize("answer, outcome", [
    ({"status": 500}, "server_error"),
    ({"content": "yes, they mean the same"}, "invalid_output"),  # not the schema's JSON, twice
    ({"garbage": "not a chat completion"}, "invalid_output"),
])
def test_a_failing_model_leaves_the_rules_decision_and_the_failure_is_recorded(answer, outcome):
    with FakeOpenAI({JUDGE_MODEL: [{"answers": [answer]}]}) as fake:
        judge = RecordingJudge(LLMJudge(client_for(fake)))
        assert semantic_match(GOLD_TEXT, PARAPHRASE, judge) is False  # the rules' reject stands
        [decision] = judge.decisions
        assert decision["same"] is None and decision["error"].startswith(outcome)
        assert (decision["expected"], decision["got"]) == (GOLD_TEXT, PARAPHRASE)


def test_a_failure_is_remembered_briefly_so_a_score_under_a_lock_does_not_wait_again(monkeypatch):
    import tasks.judge

    with FakeOpenAI({JUDGE_MODEL: [{"answers": [{"status": 500}]}]}) as fake:
        judge = LLMJudge(client_for(fake))
        assert judge(GOLD_TEXT, PARAPHRASE) is None
        asked = fake.count()
        assert asked == 2  # the first try and one retry (max_retries 1)
        assert judge(GOLD_TEXT, PARAPHRASE) is None and fake.count() == asked  # from the memo
        monkeypatch.setattr(tasks.judge, "FAILURE_MEMO_SECONDS", 0.0)
        other = LLMJudge(client_for(fake))
        assert other(GOLD_TEXT, PARAPHRASE) is None and other(GOLD_TEXT, PARAPHRASE) is None
        assert fake.count() == asked + 4  # no memo: each score asks anew


def test_a_text_too_long_to_quote_whole_gets_no_opinion_and_is_not_sent():
    padded = PARAPHRASE + " " * 2100 + "; also cancel my membership"
    assert explain(GOLD_TEXT, padded)["overrulable"]
    with FakeOpenAI({JUDGE_MODEL: [{"answers": [SAME]}]}) as fake:
        judge = RecordingJudge(LLMJudge(client_for(fake)))
        assert semantic_match(GOLD_TEXT, padded, judge) is False
        assert fake.count() == 0
    [decision] = judge.decisions
    assert decision["same"] is None and "too long" in decision["error"] and decision["got_chars"] == len(padded)


def test_the_memo_keeps_the_pairs_used_last(monkeypatch):
    import tasks.judge

    monkeypatch.setattr(tasks.judge, "MEMO_SIZE", 2)
    texts = [f"The restaurant had no record of our booking number {n}" for n in range(3)]
    golds = [f"The restaurant lost our reservation number {n}" for n in range(3)]
    with FakeOpenAI({JUDGE_MODEL: [{"answers": [SAME]}]}) as fake:
        judge = LLMJudge(client_for(fake))
        for gold, text in zip(golds, texts):
            assert judge(gold, text) is True
        assert len(judge._memo) == 2 and (golds[0], texts[0]) not in judge._memo
        judge(golds[2], texts[2])
        assert fake.count() == 3  # the last pair came from the memo


def test_an_unrewarded_ending_does_not_ask_the_judge():
    from tasks.rollout.episode import score
    from tasks.spec import TaskSpec

    spec = TaskSpec(instruction="", user_profile={}, s0=S0, s_gt=GOLD, gold_chain=[], communicate_info=[],
                    schema=SCHEMA, tools=[])
    paraphrased = agent_state(body="Important client, ring them before noon")
    with FakeOpenAI({JUDGE_MODEL: [{"answers": [SAME]}]}) as fake:
        judge = LLMJudge(client_for(fake))
        for termination in ("expired", "max_steps", "agent_error"):
            reward, breakdown = score(spec, paraphrased, [], [], termination, judge)
            assert reward == 0.0 and "judged" not in breakdown
        assert fake.count() == 0
        reward, breakdown = score(spec, paraphrased, [], [], "agent_stop", judge)
        assert reward == 1.0 and fake.count() == 1 and [d["same"] for d in breakdown["judged"]] == [True]


def test_the_reward_uses_the_judge_for_semantic_columns_and_the_breakdown_says_what_it_decided():
    paraphrased = agent_state(body="Important client, ring them before noon")  # rejected for overlap alone
    negated = agent_state(body="Not a priority customer, call before noon")
    assert compute_reward(paraphrased, GOLD, S0, SCHEMA).reward == 0.0
    with FakeOpenAI({JUDGE_MODEL: [{"answers": [SAME]}]}) as fake:
        judge = RecordingJudge(LLMJudge(client_for(fake)))
        assert compute_reward(paraphrased, GOLD, S0, SCHEMA, judge=judge).reward == 1.0
        assert [d["got"] for d in judge.decisions] == ["Important client, ring them before noon"]
        assert compute_reward(negated, GOLD, S0, SCHEMA, judge=judge).reward == 0.0
        assert fake.count() == 1  # the negation was never asked


@pytest.mark.django_db
def test_the_setting_chooses_the_judge_and_its_calls_are_recorded(settings):
    from environments.models import LLMCall
    from tasks import services

    assert services.semantic_judge() is None  # the default: the rules alone
    with FakeOpenAI({JUDGE_MODEL: [{"answers": [SAME]}]}) as fake:
        settings.SCALEENV_SEMANTIC_JUDGE = "llm"
        settings.SCALEENV_LLM = {"base_url": fake.base_url, "api_key": "test", "model": "fake-default",
                                 "role_models": {"semantic_judge": JUDGE_MODEL}, "timeout": 2.0, "max_retries": 1,
                                 "max_backoff": 0.01, "validation_retries": 1, "concurrency": 2, "slots_dir": ""}
        judge = services.semantic_judge()
        assert isinstance(judge, LLMJudge) and judge.model == JUDGE_MODEL and services.semantic_judge() is judge
        assert judge(GOLD_TEXT, PARAPHRASE) is True
    call = LLMCall.objects.get()
    assert (call.role, call.stage, call.model, call.outcome) == ("semantic_judge", "reward_judge", JUDGE_MODEL, "ok")


def test_the_llm_judge_without_an_llm_is_a_clear_configuration_error():
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALEENV_LLM")}
    env.update(SCALEENV_SEMANTIC_JUDGE="llm", DJANGO_SETTINGS_MODULE="scaleenv_site.settings")
    done = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "SCALEENV_SEMANTIC_JUDGE=llm needs an LLM" in done.stderr


OTHER_TEXT = "quiet marmalade harbour"  # what the agent writes instead: the rules reject it for overlap alone


def _task_writing_text():
    """A verified write task whose gold run writes a free text (a review's comment) that the agent
    sends as an argument of a gold call: (task, that text)."""
    from tasks import selectors
    from tasks.spec import build_task_spec
    from tests.tasks.conftest import stored_tasks

    for task in stored_tasks(seed=9, per_domain=30, domain_seed=1002):  # domain 1002 has reviews to write
        if task.status != "verified" or task.kind != "write":
            continue
        spec = build_task_spec(selectors.domain_view(task.domain), task)
        texts = [row[column] for table, rows in spec.s_gt.items() for pk, row in rows.items()
                 for column, policy in spec.schema["tables"][table]["columns"].items()
                 if policy.get("policy") == "semantic" and isinstance(row.get(column), str)
                 and (spec.s0.get(table, {}).get(pk) or {}).get(column) != row[column]]
        used = {value for call in task.gold_calls for value in call["args"].values() if isinstance(value, str)}
        written = next((text for text in texts if text in used and explain(text, OTHER_TEXT)["overrulable"]), None)
        if written:
            return task, written
    raise AssertionError("no verified write task writes a free text")


def _use_judge(settings, fake: FakeOpenAI, judge: str = "llm") -> None:
    settings.SCALEENV_SEMANTIC_JUDGE = judge
    settings.SCALEENV_LLM = {"base_url": fake.base_url, "api_key": "test", "model": "fake-default",
                             "role_models": {"semantic_judge": JUDGE_MODEL}, "timeout": 2.0, "max_retries": 1,
                             "max_backoff": 0.01, "validation_retries": 1, "concurrency": 2, "slots_dir": ""}


@pytest.mark.django_db(transaction=True)
def test_an_http_session_asks_the_judge_before_its_lock_and_scores_with_its_answer(settings):
    """An outside agent writes another text than the gold one into a ``semantic`` column: the rules
    alone give 0.0; with the judge (the model says it means the same) 1.0, the model asked once (before
    the session's lock; the score under the lock comes from the judge's memo) and the breakdown says so."""
    from environments.models import LLMCall
    from tasks.models import Run
    from tests.tasks.test_sessions_api import api_client, play

    task, written = _task_writing_text()
    other = OTHER_TEXT

    def rewrite(arguments):
        return {k: other if v == written else v for k, v in arguments.items()}

    from django.db import connection

    from tasks import services, sessions

    scores, asked_holding = {}, []
    with FakeOpenAI({JUDGE_MODEL: [{"when": [other], "answers": [SAME]}]}) as fake:
        for judge in ("rules", "llm"):
            _use_judge(settings, fake, judge)
            if judge == "llm":  # observe what is held when the model is asked
                structured = services.semantic_judge().client.structured

                def observed(**kwargs):
                    asked_holding.append((connection.in_atomic_block,
                                          any(lock.locked() for lock in sessions._session_queues)))
                    return structured(**kwargs)

                services.semantic_judge().client.structured = observed
            session, _, reply = play(api_client("Agent", f"agent-{judge}"), task, rewrite=rewrite)
            scores[judge] = (reply, Run.objects.get(pk=session))
        assert fake.count(JUDGE_MODEL) == 1
    assert asked_holding == [(False, False)]  # no transaction, no session lock of this process
    (rules_reply, rules_run), (llm_reply, llm_run) = scores["rules"], scores["llm"]
    assert (rules_reply["reward"], rules_run.reward) == (0.0, 0.0) and "judged" not in rules_run.breakdown
    assert (llm_reply["reward"], llm_run.reward) == (1.0, 1.0)
    assert [(d["expected"], d["got"], d["same"]) for d in llm_run.breakdown["judged"]] == [(written, other, True)]
    assert written not in json.dumps(llm_reply)  # the agent's answer never carries the gold text
    assert LLMCall.objects.filter(role="semantic_judge", cached=False).count() == 1


@pytest.mark.django_db(transaction=True)
def test_finishing_a_session_asks_the_model_outside_any_transaction(settings):
    """``finish`` scores once before it locks the session: the model is asked with no transaction
    open (on SQLite a transaction would hold the whole database), and the locked score reuses it."""
    from django.db import connection

    from tasks import services
    from tasks.models import Run
    from tests.tasks.test_sessions_api import api_client, post

    task, written = _task_writing_text()
    other = OTHER_TEXT
    with FakeOpenAI({JUDGE_MODEL: [{"when": [other], "answers": [SAME]}]}) as fake:
        _use_judge(settings, fake)
        judge = services.semantic_judge()
        asked_in_transaction = []
        structured = judge.client.structured

        def observed(**kwargs):
            asked_in_transaction.append(connection.in_atomic_block)
            return structured(**kwargs)

        judge.client.structured = observed
        client = api_client("Agent", "finisher")
        session = post(client, "/api/sessions/", {"task": task.pk}).json()["session"]
        for call in task.gold_calls:
            arguments = {k: other if v == written else v for k, v in call["args"].items()}
            answer = post(client, f"/api/sessions/{session}/tool-calls/", {"name": call["tool"], "arguments": arguments})
            assert answer.status_code == 200 and answer.json()["outcome"] == "success", answer.content
        finished = post(client, f"/api/sessions/{session}/finish/", {})
        assert finished.status_code == 200, finished.content
        assert fake.count(JUDGE_MODEL) == 1
    assert asked_in_transaction == [False]
    run = Run.objects.get(pk=session)
    assert run.termination == "agent_stop" and [d["same"] for d in run.breakdown["judged"]] == [True]
    assert written not in finished.content.decode()


def _eval(*args: str) -> dict:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("semantic_eval", *args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_semantic_eval_measures_the_rules_on_the_labelled_set():
    from tests.tasks.test_semantic import PAIRS, SPLITS, accuracy

    result = _eval("--judge", "rules")
    assert result["method"] == "rules" and result["judged"] == 0
    assert result["accuracy"]["all"]["total"] == len(PAIRS)
    for split in ("all", "dev", "test"):
        assert result["accuracy"][split]["accuracy"] == round(accuracy(SPLITS[split]), 4)
    assert result["accuracy"]["batch b7"]["accuracy"] == round(accuracy(SPLITS["b7"]), 4)


@pytest.mark.django_db
def test_semantic_eval_with_the_llm_judge_sends_only_overrulable_pairs(settings, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    rows = [{"id": "x-1", "gold": GOLD_TEXT, "candidate": PARAPHRASE, "label": True, "kind": "paraphrase"},
            {"id": "x-2", "gold": "Pain in the left knee", "candidate": "Pain in the right knee", "label": False,
             "kind": "contradiction"},
            {"id": "x-3", "gold": "The heater is broken", "candidate": "The heater is not working", "label": True,
             "kind": "paraphrase"}]
    pairs.write_text("\n".join(json.dumps(r) for r in rows))
    with FakeOpenAI({JUDGE_MODEL: [{"answers": [SAME]}]}) as fake:
        _use_judge(settings, fake)
        judged = _eval("--judge", "llm", "--pairs", str(pairs))
        rules = _eval("--judge", "rules", "--pairs", str(pairs))
        assert fake.count(JUDGE_MODEL) == 1
    assert (judged["accuracy"]["all"]["right"], judged["judged"], judged["model"]) == (3, 1, JUDGE_MODEL)
    assert (rules["accuracy"]["all"]["right"], rules["false_rejects"]) == (2, 1)


def test_semantic_eval_refuses_a_bad_file_clearly(tmp_path):
    from django.core.management import CommandError

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "gold": "x y z", "candidate": "x y z", "kind": "paraphrase"}\n')
    with pytest.raises(CommandError, match="true/false label"):
        _eval("--pairs", str(bad))
    bad.write_text('{"id": 7, "gold": "x y z", "candidate": "x y z", "kind": "paraphrase", "label": true}\n')
    with pytest.raises(CommandError, match="text id"):
        _eval("--pairs", str(bad))
    bad.write_text('["not", "an", "object"]\n')
    with pytest.raises(CommandError, match="an object"):
        _eval("--pairs", str(bad))
    with pytest.raises(CommandError, match="cannot read"):
        _eval("--pairs", str(tmp_path / "missing.jsonl"))


@pytest.mark.django_db(transaction=True)
def test_sessions_judged_at_once_through_gunicorn_all_earn_the_judges_reward():
    """Six sessions (three accounts) play the same task at once through gunicorn (two processes of two
    threads), each writing another text than the gold one: each earns 1.0 through the judge, the
    model is asked at most once per session (answers cached across processes), and every stored run
    says what the judge decided."""
    import threading

    import httpx

    from tasks import loadbench
    from tasks.models import Run

    task, written = _task_writing_text()
    [play] = loadbench.oracle_plays([task])
    tokens = loadbench.bench_tokens(3)
    rewards, errors = [], []
    with FakeOpenAI({JUDGE_MODEL: [{"when": [OTHER_TEXT], "answers": [SAME]}]}) as fake:
        env = {**loadbench.SERVER_ENV, "SCALEENV_SEMANTIC_JUDGE": "llm", "SCALEENV_LLM_BASE_URL": fake.base_url,
               "SCALEENV_LLM_MODEL": "fake-default", "SCALEENV_LLM_MODEL_SEMANTIC_JUDGE": JUDGE_MODEL,
               "SCALEENV_LLM_MAX_RETRIES": "1", "SCALEENV_LLM_TIMEOUT": "10"}
        with loadbench.running_server("gunicorn", workers=2, threads=2, env=env) as url:

            def session(n: int) -> None:
                with httpx.Client(base_url=url, headers={"Authorization": f"Token {tokens[n % 3]}"},
                                  timeout=30) as client:
                    started = client.post("/api/sessions/", json={"task": task.pk})
                    if started.status_code != 201:
                        errors.append(started.text)
                        return
                    sid = started.json()["session"]
                    for action in play.actions:
                        if action.kind == "tool":
                            arguments = {k: OTHER_TEXT if v == written else v for k, v in action.arguments.items()}
                            answer = client.post(f"/api/sessions/{sid}/tool-calls/",
                                                 json={"name": action.name, "arguments": arguments})
                        else:
                            answer = client.post(f"/api/sessions/{sid}/messages/", json={"content": action.content})
                        if answer.status_code != 200:
                            errors.append(f"{answer.status_code} {answer.text[:200]}")
                            return
                        if answer.json().get("finished"):
                            rewards.append(answer.json()["reward"])
                            return

            threads = [threading.Thread(target=session, args=(n,)) for n in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert 1 <= fake.count(JUDGE_MODEL) <= 6
    assert errors == [] and rewards == [1.0] * 6
    runs = Run.objects.filter(agent="external", task=task)
    assert runs.count() == 6
    assert all([(d["got"], d["same"]) for d in run.breakdown["judged"]] == [(OTHER_TEXT, True)] for run in runs)
