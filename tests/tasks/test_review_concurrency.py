"""Reviewing under a real multi-process server (gunicorn, several processes of several threads):
curators asking for their next task at once never get the same task; curators racing for one task
leave exactly one lease holder, and only the holder's verdict is recorded, once."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import httpx
import pytest

from environments import services as env_services
from tasks import loadbench
from tasks.models import Review, ReviewEvent, ReviewStatus, Task
from tests.tasks.conftest import stored_tasks
from tests.tasks.test_query_budgets import clone_tasks

pytestmark = pytest.mark.django_db(transaction=True)
CURATORS = 6


def signed_in(base: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30, follow_redirects=False)
    form = client.get("/accounts/login/").text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    answer = client.post("/accounts/login/", data={"username": username, "password": password,
                                                   "csrfmiddlewaretoken": token})
    assert answer.status_code == 302, answer.text[:300]
    client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
    return client


def all_at_once(clients: list[httpx.Client], act: Callable[[httpx.Client], httpx.Response]) -> list[httpx.Response]:
    start = threading.Barrier(len(clients))
    answers: list[httpx.Response | None] = [None] * len(clients)

    def one(index: int) -> None:
        start.wait()
        answers[index] = act(clients[index])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(answer is not None for answer in answers)  # every request answered (in the clients' order)
    return answers  # type: ignore[return-value]


def test_curators_at_once_get_distinct_tasks_and_one_wins_a_race():
    task = stored_tasks(seed=9, per_domain=1)[0]
    clone_tasks(Task.objects.get(pk=task.pk), 3 * CURATORS)
    names = [f"curator-{i}" for i in range(CURATORS)]
    for name in names:
        env_services.create_account(name, "curator", password="a long test password 1")
    with loadbench.running_server("gunicorn", workers=3, threads=4) as url:
        clients = [signed_in(url, name, "a long test password 1") for name in names]
        # Everyone asks for their next task at the same moment, approves it at once, and asks again.
        taken: list[int] = []
        for _ in range(2):
            mine = {}
            for client, answer in zip(clients, all_at_once(clients, lambda c: c.post("/review/next/"))):
                assert answer.status_code == 302, answer.text[:300]
                mine[id(client)] = int(re.search(r"/tasks/(\d+)/", answer.headers["location"]).group(1))
            holders = dict(Task.objects.filter(pk__in=mine.values()).values_list("pk", "lease_holder__username"))
            assert sorted(holders.values()) == sorted(names)  # one task each, each held by its taker
            taken += mine.values()
            all_at_once(clients, lambda c: c.post(f"/review/tasks/{mine[id(c)]}/submit/", data={"verdict": "approved"}))
        assert len(taken) == 2 * CURATORS and len(set(taken)) == len(taken)  # nobody got a task twice
        assert Task.objects.filter(pk__in=taken, review_status=ReviewStatus.APPROVED).count() == 2 * CURATORS
        # A decision moves its reviewer on to the next task (a claim of its own): still one claimer a task,
        # and nobody ends holding two leases.
        claimed = list(ReviewEvent.objects.filter(action=ReviewEvent.Action.CLAIM).values_list("task_id", flat=True))
        assert len(claimed) >= 2 * CURATORS and len(set(claimed)) == len(claimed)
        held = list(Task.objects.filter(review_status=ReviewStatus.IN_REVIEW).values_list("lease_holder__username",
                                                                                           flat=True))
        assert len(held) == len(set(held))

        # Everyone races for the same untouched task: one lease, one claim event.
        contested = Task.objects.filter(review_status=ReviewStatus.PENDING, lease_holder=None).order_by("pk").first()
        all_at_once(clients, lambda c: c.post(f"/review/tasks/{contested.pk}/claim/"))
        contested.refresh_from_db()
        winner = contested.lease_holder.username
        assert contested.review_status == ReviewStatus.IN_REVIEW and winner in names
        assert ReviewEvent.objects.filter(task=contested, action=ReviewEvent.Action.CLAIM).count() == 1

        # Everyone approves it at once: only the holder's verdict counts, once.
        all_at_once(clients, lambda c: c.post(f"/review/tasks/{contested.pk}/submit/", data={"verdict": "approved"}))
        contested.refresh_from_db()
        assert contested.review_status == ReviewStatus.APPROVED
        assert list(Review.objects.filter(task=contested).values_list("reviewer__username", flat=True)) == [winner]
        assert ReviewEvent.objects.filter(task=contested, action=ReviewEvent.Action.APPROVE).count() == 1
        for client in clients:
            client.close()


def test_curators_starting_the_same_batch_at_once_make_one_batch(tmp_path):
    from environments.models import Batch, BatchItem

    names = [f"starter-{i}" for i in range(CURATORS)]
    for name in names:
        env_services.create_account(name, "curator", password="a long test password 1")
    form = {"synthesis-backend": "procedural", "synthesis-domains": "3", "synthesis-seed": "77",
            "synthesis-fault_rate": "0"}
    # A private var folder: the jobs wait in this server's own broker folder, no worker takes them.
    with loadbench.running_server("gunicorn", workers=3, threads=4, env={"SCALEENV_VAR_DIR": str(tmp_path)}) as url:
        clients = [signed_in(url, name, "a long test password 1") for name in names]
        answers = all_at_once(clients, lambda c: c.post("/batches/start/synthesis/", data=form))
        for client in clients:
            client.close()
    assert [a.status_code for a in answers] == [302] * CURATORS, [a.text[:200] for a in answers if a.status_code != 302]
    assert len({a.headers["location"] for a in answers}) == 1  # everyone was sent to the same batch
    batch = Batch.objects.get()
    assert batch.total_items == 3 and BatchItem.objects.filter(batch=batch).count() == 3
