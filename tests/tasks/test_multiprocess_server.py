"""Sessions under a real multi-process server: gunicorn with several worker processes of several
threads each, sessions of different tasks and accounts played at once over HTTP. Every answer
must be the one the in-process episode got (no contamination), every acknowledged call stored in
order, every final state replay to its hash, and every oracle session earn 1.0."""

import pytest

from tasks import loadbench
from tests.tasks.conftest import stored_tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("server", ["gunicorn", "runserver"])
def test_concurrent_sessions_on_a_real_server_are_isolated_stored_and_replayable(server):
    tasks = [t for t in stored_tasks(seed=9, per_domain=4) if t.status == "verified"]
    plays = loadbench.oracle_plays(tasks)
    assert len(plays) >= 3 and all(p.reward == 1.0 for p in plays)
    tokens = loadbench.bench_tokens(3)
    with loadbench.running_server(server, workers=3, threads=4, env=loadbench.SERVER_ENV) as url:
        result = loadbench.run_load(url, tokens, plays, sessions=12, episodes=2, think_ms=0)
    assert result["episodes"] == 24 and result["errors"] == 0, result["first_errors"]
    calls = [sum(a.kind == "tool" for a in p.actions) for p in plays]
    assert result["tool_calls"] == sum(calls[(slot + episode) % len(plays)] for slot in range(12) for episode in (0, 1))
    assert (result["lost_calls"], result["reordered_sessions"], result["contaminated_sessions"],
            result["replay_mismatches"], result["unfinished_sessions"]) == (0, 0, 0, 0, 0)
    assert result["rewards_one"] == 24


def test_the_benchmark_notices_an_answer_that_is_not_the_sessions_own():
    """The checks can fail: a play whose expected observation is another task's counts as contaminated."""
    import dataclasses

    tasks = [t for t in stored_tasks(seed=9, per_domain=4) if t.status == "verified"]
    plays = loadbench.oracle_plays(tasks)
    first_call = next(i for i, a in enumerate(plays[0].actions) if a.kind == "tool")
    actions = list(plays[0].actions)
    actions[first_call] = dataclasses.replace(actions[first_call], expected='{"rows": "from another session"}')
    wrong = dataclasses.replace(plays[0], actions=tuple(actions))
    with loadbench.running_server("gunicorn", workers=2, threads=2) as url:
        result = loadbench.run_load(url, loadbench.bench_tokens(1), [wrong], sessions=2, episodes=1, think_ms=0)
    assert result["contaminated_sessions"] == 2 and result["lost_calls"] == 0


def test_eight_threads_on_one_session_through_gunicorn_store_every_acknowledged_call_in_order():
    """Eight client threads call one session at once through gunicorn (two processes of two threads:
    the site's WSGI handler and its plain path, calls of one session landing in both processes):
    every acknowledged call is stored once, in a contiguous order, with its own arguments."""
    import threading

    import httpx

    from tasks.models import Run, RunStep

    task = next(t for t in stored_tasks(seed=9, per_domain=3) if t.status == "verified")
    call = {"name": task.gold_chain[0]["tool"], "arguments": task.gold_chain[0]["args"]}
    headers = {"Authorization": f"Token {loadbench.bench_tokens(1)[0]}"}
    acknowledged, errors = [], []
    with loadbench.running_server("gunicorn", workers=2, threads=2, env=loadbench.SERVER_ENV) as url:
        started = httpx.post(f"{url}/api/sessions/", json={"task": task.pk}, headers=headers, timeout=30)
        assert started.status_code == 201, started.text
        session = started.json()["session"]

        def worker(n: int) -> None:
            with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
                for i in range(5):
                    email = call["arguments"]["email"] if (n + i) % 2 == 0 else f"nobody{n}-{i}@example.com"
                    answer = client.post(f"/api/sessions/{session}/tool-calls/",
                                         json={"name": call["name"], "arguments": {**call["arguments"], "email": email}})
                    if answer.status_code != 200:
                        errors.append(f"{answer.status_code} {answer.text[:200]}")
                    else:
                        acknowledged.append((answer.json()["tool_call_id"], email))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == [] and len(acknowledged) == 40
    steps = list(RunStep.objects.filter(run_id=session, kind="tool_call").order_by("index"))
    assert [s.index for s in steps] == list(range(1, 41))  # contiguous: no lost or doubled call
    assert {f"call_{s.index}": s.arguments["email"] for s in steps} == dict(acknowledged)
    assert Run.objects.get(pk=session).step_count == 41
