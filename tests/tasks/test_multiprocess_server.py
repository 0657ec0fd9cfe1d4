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
