"""Task pages, the task list, an API list and a session tool call use a bounded number of queries;
list queries never load the large JSON columns they do not show."""

import json

import pytest

from environments import batches
from tasks import services
from tasks.models import Run, Task
from tests.conftest import api_client, page_client
from tests.tasks.conftest import stored_tasks

pytestmark = pytest.mark.django_db(transaction=True)

AUTH = 4  # a signed-in page: the session, the user, the user's and the groups' permissions


def clone_tasks(task: Task, count: int) -> None:
    """More rows of the same shape (the page's work must not grow with them)."""
    rows = []
    for i in range(count):
        task.pk = None
        task.seed = 10_000 + i
        rows.append(Task(**{f.attname: getattr(task, f.attname) for f in Task._meta.concrete_fields}))
    Task.objects.bulk_create(rows)


@pytest.fixture
def tasks():
    made = stored_tasks(seed=13, per_domain=2)
    rollout, _ = services.start_rollout_batch(agent="oracle", which="all", trials=2)
    for item in rollout.items.all():
        batches.run_item(item.pk, worker="test")
    return made


def test_the_task_list_is_bounded_and_leaves_the_states_unloaded(tasks, django_assert_num_queries):
    CURATOR = page_client("Curator")
    with django_assert_num_queries(3 + AUTH) as small:  # count, one page of ids, their rows
        assert CURATOR.get("/tasks/").status_code == 200
    clone_tasks(Task.objects.get(pk=tasks[0].pk), 120)
    with django_assert_num_queries(3 + AUTH) as large:
        body = CURATOR.get("/tasks/?page=2").content.decode()
    assert "page 2 of 3" in body
    page_query = large.captured_queries[-1]["sql"]
    for column in ("s0", "s_gt", "gold_chain", "expansion", "gate"):
        assert f'"tasks_task"."{column}"' not in page_query
    assert len(small.captured_queries) == len(large.captured_queries)


def test_task_and_run_pages_are_bounded(tasks, django_assert_max_num_queries):
    CURATOR = page_client("Curator")
    CURATOR.get("/tasks/")
    task = tasks[0]
    run = Run.objects.filter(task=task).first()
    # the task, the previous and next in the queue's filter, its runs, its tables, its domain's policy,
    # its review events, verdicts, the rejection reasons and its queue
    with django_assert_max_num_queries(10 + AUTH):
        assert CURATOR.get(f"/tasks/{task.pk}/").status_code == 200
    # the run with its task, the steps' summaries, the gold tools' arguments, one page of steps, the
    # diffs that touched a wrong table (tests/tasks/test_run_replay.py: the same for 12 and 500 steps)
    with django_assert_max_num_queries(5 + AUTH):
        assert CURATOR.get(f"/runs/{run.pk}/").status_code == 200
    with django_assert_max_num_queries(2 + AUTH):  # a step's body: the run (visibility), the step
        assert CURATOR.get(f"/runs/{run.pk}/step/?index=0").status_code == 200


def test_api_lists_are_bounded(tasks, django_assert_max_num_queries):
    client = api_client("Curator", "reader")
    for url in ("/api/tasks/", "/api/runs/", "/api/batches/"):
        with django_assert_max_num_queries(3 + 3):
            assert client.get(url).status_code == 200, url


def test_a_session_tool_call_is_bounded(tasks, django_assert_max_num_queries):
    task = next(t for t in tasks if t.status == "verified")
    client = api_client("Agent", "agent")
    started = client.post("/api/sessions/", json.dumps({"task": task.pk}), content_type="application/json").json()
    step = task.gold_chain[0]
    body = json.dumps({"name": step["tool"], "arguments": step["args"]})
    # The token was read when the session started (remembered: scaleenv_site/auth.py); then one
    # transaction: BEGIN, lock the session row (ownership included), insert the step, update the
    # session, COMMIT. The task's spec and the state come from memory.
    with django_assert_max_num_queries(5):
        response = client.post(f"/api/sessions/{started['session']}/tool-calls/", body, content_type="application/json")
    assert response.status_code == 200 and response.json()["outcome"] == "success"
