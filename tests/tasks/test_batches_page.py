"""The Batches page: who may start a batch, what the request does (create or resume the batch and
queue its jobs after commit, never run them), the live progress fragment and its "no worker"
notice, and bounded queries."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from environments import batches
from environments.models import Batch, BatchItem, Domain
from scaleenv_site.celery import app as celery_app
from tasks import services
from tests.conftest import account, page_client
from tests.tasks.conftest import stored_tasks

pytestmark = pytest.mark.django_db(transaction=True)

AUTH = 4  # a signed-in page: the session, the user, the user's and the groups' permissions
SYNTHESIS = {"synthesis-backend": "procedural", "synthesis-domains": "2", "synthesis-seed": "41",
             "synthesis-fault_rate": "0"}


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, list[int]]]:
    """Jobs sent to the broker (recorded instead of sent: no worker runs in these tests)."""
    record: list[tuple[str, list[int]]] = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, args=None, **kw: record.append((name, list(args or []))))
    return record


def test_it_starts_a_synthesis_batch_and_only_queues_its_jobs_after_commit(sent):
    client = page_client("Curator")
    response = client.post("/batches/start/synthesis/", SYNTHESIS)
    batch = Batch.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/batches/{batch.pk}/"
    assert (batch.kind, batch.backend, batch.params["domains"], batch.params["seed"]) == ("synthesis", "procedural", 2, 41)
    item_ids = sorted(batch.items.values_list("pk", flat=True))
    assert sorted(args[0] for _name, args in sent) == item_ids
    assert {name for name, _args in sent} == {"scaleenv.synthesize_domain"}
    # The request ran nothing: every item still waits for a worker, no domain exists.
    assert set(batch.items.values_list("status", flat=True)) == {BatchItem.Status.QUEUED}
    assert Domain.objects.count() == 0
    page = client.get(response["Location"]).content.decode()
    assert "Started Synthesis batch #" in page and "2 job(s) queued for a worker" in page
    assert 'hx-trigger="every 1s"' in page  # the live block polls while the batch runs


def test_the_same_parameters_resume_the_same_batch_and_retry_its_failed_items(sent):
    client = page_client("Curator")
    client.post("/batches/start/synthesis/", SYNTHESIS)
    batch = Batch.objects.get()
    first, second = batch.items.order_by("pk")
    BatchItem.objects.filter(pk=first.pk).update(status=BatchItem.Status.FAILED, error="boom")
    sent.clear()
    response = client.post("/batches/start/synthesis/", SYNTHESIS, follow=True)
    assert Batch.objects.count() == 1
    assert "has the same parameters: resumed it" in response.content.decode()
    assert BatchItem.objects.get(pk=first.pk).status == BatchItem.Status.RETRY
    assert sorted(args[0] for _name, args in sent) == [first.pk, second.pk]


def test_bad_parameters_are_refused_with_the_reason_and_nothing_is_made(sent):
    client = page_client("Curator")
    response = client.post("/batches/start/synthesis/", {**SYNTHESIS, "synthesis-domains": "0"})
    assert response.status_code == 400
    assert "Ensure this value is greater than or equal to 1" in response.content.decode()
    response = client.post("/batches/start/tasks/", {"tasks-per_domain": "2", "tasks-seed": "1",
                                                     "tasks-complexity": "mix"})
    assert response.status_code == 400 and "no domain to make tasks from" in response.content.decode()
    response = client.post("/batches/start/rollout/", {"rollout-agents": ["oracle"], "rollout-tasks": "verified",
                                                       "rollout-trials": "1"})
    assert response.status_code == 400 and "no task to run" in response.content.decode()
    assert client.post("/batches/start/nonsense/", {}).status_code == 404  # no such page
    assert Batch.objects.count() == 0 and sent == []


def test_a_viewer_watches_batches_but_cannot_start_one_and_an_agent_sees_nothing(sent):
    viewer = page_client("Viewer")
    page = viewer.get("/batches/").content.decode()
    assert "Past batches" in page and "Start synthesis" not in page and "starting one needs" in page
    assert viewer.post("/batches/start/synthesis/", SYNTHESIS).status_code == 403
    assert page_client("Agent").get("/batches/").status_code == 403
    assert page_client("Agent", "agent-2").get("/quality/").status_code == 403
    assert Batch.objects.count() == 0 and sent == []


def test_a_researcher_may_start_one_and_a_post_without_csrf_fails(sent):
    assert page_client("Researcher").post("/batches/start/synthesis/", SYNTHESIS).status_code == 302
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(account("Curator", "strict-curator"))
    assert strict.post("/batches/start/synthesis/", {**SYNTHESIS, "synthesis-seed": "42"}).status_code == 403
    assert Batch.objects.count() == 1


def test_task_batches_use_the_chosen_domains_and_rollouts_make_one_batch_per_agent(sent):
    stored_tasks(seed=3, per_domain=2)
    domain = Domain.objects.get()
    client = page_client("Curator")
    response = client.post("/batches/start/tasks/", {"tasks-domains": [str(domain.pk)], "tasks-per_domain": "3",
                                                     "tasks-seed": "8", "tasks-complexity": "easy"})
    batch = Batch.objects.get(kind="tasks", params__seed=8)
    assert response["Location"] == f"/batches/{batch.pk}/"
    assert batch.params["domains"] == [domain.slug] and batch.total_items == 3
    response = client.post("/batches/start/rollout/", {"rollout-agents": ["oracle", "null"], "rollout-tasks": "all",
                                                       "rollout-trials": "2"})
    assert response.status_code == 302 and response["Location"] == "/batches/?kind=rollout"
    rollouts = Batch.objects.filter(kind="rollout")
    assert sorted(rollouts.values_list("backend", flat=True)) == ["null", "oracle"]
    assert all(b.total_items == 2 * 2 for b in rollouts)
    names = {name for name, _args in sent}
    assert names == {"scaleenv.make_task", "scaleenv.rollout"}
    listing = client.get("/batches/?kind=rollout").content.decode()
    assert "Rollout #" in listing and "Tasks #" not in listing


def test_an_unreachable_broker_is_said_on_the_batch_and_the_jobs_can_be_sent_again(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    monkeypatch.setattr(celery_app, "send_task", refuse)
    client = page_client("Curator")
    response = client.post("/batches/start/synthesis/", SYNTHESIS, follow=True)
    batch = Batch.objects.get()
    assert response.status_code == 200
    assert batch.error.startswith(services.BROKER_ERROR) and "Connection refused" in batch.error
    page = response.content.decode()
    assert "its jobs were not sent" in page and "Send the jobs again" in page
    record: list[int] = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, args=None, **kw: record.append(args[0]))
    response = client.post(f"/batches/{batch.pk}/resume/", follow=True)
    batch.refresh_from_db()
    assert batch.error == "" and sorted(record) == sorted(batch.items.values_list("pk", flat=True))
    assert "2 job(s) of batch" in response.content.decode()
    assert page_client("Viewer").post(f"/batches/{batch.pk}/resume/").status_code == 403


def test_with_eager_jobs_the_batch_is_done_when_the_page_opens(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # development only: jobs run at enqueue time
    response = page_client("Curator").post("/batches/start/synthesis/", {**SYNTHESIS, "synthesis-domains": "1"},
                                           follow=True)
    batch = Batch.objects.get()
    assert batch.status == Batch.Status.DONE and Domain.objects.count() == 1
    page = response.content.decode()
    assert 'data-status="done"' in page and "hx-trigger" not in page.split('id="batch-live"')[1].split(">")[0]
    assert Domain.objects.get().name in page  # the finished batch links to what it made


def _live(client: Client, batch: Batch, **params: str) -> str:
    return client.get(f"/batches/{batch.pk}/live/", params).content.decode()


def test_the_live_fragment_shows_progress_stage_and_escaped_errors_and_stops_polling_when_done():
    stored_tasks(seed=5, per_domain=2)
    batch, _ = services.start_rollout_batch(agent="oracle", which="all", trials=1)
    first, second = batch.items.order_by("pk")
    client = page_client("Viewer")
    html = _live(client, batch)
    assert 'hx-trigger="every 1s"' in html and "0</b> done" in html and "of <b>2</b> episodes" in html
    assert batches.run_item(first.pk, worker="test") == "done"
    html = _live(client, batch)
    assert "50%" in html and "1</b> done" in html and "mean reward 1.000" in html and "elapsed" in html
    batches.fail_item(BatchItem.objects.get(pk=second.pk), "ValueError: <script>alert(1)</script>", 0.1)
    html = _live(client, batch)
    assert 'data-status="partial"' in html and "hx-trigger" not in html.split(">")[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "took" in html and "Episodes" in html
    first.refresh_from_db()
    assert f"/runs/{first.result_id}/" in html
    assert "Retry the failed items" not in html  # a viewer may not
    assert "Retry the failed items" in _live(page_client("Curator"), batch)


def test_a_batch_no_worker_takes_says_so_after_the_worker_wait(settings):
    settings.SCALEENV_WORKER_WAIT = 5
    batch, _ = services.start_task_batch(domains=[_domain()], per_domain=1, seed=2)
    client = page_client("Viewer")
    page = client.get(f"/batches/{batch.pk}/").content.decode()
    assert "No worker has taken" not in page  # just made
    signature = re.search(r"seen=([^&\"]+)", page).group(1)
    since = timezone.now().timestamp() - 30
    assert "No worker has taken an item of this batch for 30 s" in _live(
        client, batch, seen=signature.replace("%2D", "-"), idle_since=f"{since:.3f}")
    # Something moved since the poller last looked: the clock starts again.
    assert "No worker has taken" not in _live(client, batch, seen="0-0-1-0", idle_since=f"{since:.3f}")
    # A batch nobody claimed for longer than the wait says so on first sight.
    Batch.objects.filter(pk=batch.pk).update(created_at=timezone.now() - timedelta(seconds=60))
    assert "No worker has taken an item of this batch for 60 s" in client.get(f"/batches/{batch.pk}/").content.decode()
    # An item held under a live lease is work in progress, however long it takes.
    BatchItem.objects.filter(batch=batch).update(status=BatchItem.Status.RUNNING, claimed_by="elsewhere:1",
                                                 lease_expires_at=timezone.now() + timedelta(minutes=5))
    assert "No worker has taken" not in _live(client, batch, seen="0-0-1-0", idle_since=f"{since:.3f}")


def _domain() -> Domain:
    from tests.conftest import store_domain

    return store_domain()


def test_the_batches_list_and_the_live_fragment_use_a_bounded_number_of_queries(django_assert_max_num_queries, sent):
    domain = _domain()
    for seed in range(30):
        services.start_task_batch(domains=[domain], per_domain=2, seed=seed)
    client = page_client("Curator")
    with django_assert_max_num_queries(AUTH + 4):  # count, one page of batches, the start form's domains
        page = client.get("/batches/").content.decode()
    assert page.count('class="status status-queued"') == 25 and "page 1 of 2" in page
    batch = Batch.objects.order_by("pk").first()
    with django_assert_max_num_queries(AUTH + 4):  # the batch, item counts, problems, (results)
        client.get(f"/batches/{batch.pk}/live/")
    with django_assert_max_num_queries(AUTH + 1):
        client.get(f"/batches/{batch.pk}/row/")


def test_the_filesystem_broker_never_shows_a_worker_a_half_written_message(tmp_path, monkeypatch):
    """A worker polling while a sender writes must never read a partial message: it would stop the
    worker ("Unrecoverable error: JSONDecodeError") and lose the job (scaleenv_site/broker.py)."""
    from kombu import Connection

    from scaleenv_site import broker

    folder = tmp_path / "queue"
    folder.mkdir()
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "store_processed": False}
    seen_while_writing: list[list[str]] = []
    real_dumps = broker.dumps

    def dumps_and_look(payload):  # called while the message is being written
        seen_while_writing.append([name for name in os.listdir(folder) if name.endswith(".msg")])
        return real_dumps(payload)

    monkeypatch.setattr(broker, "dumps", dumps_and_look)
    with Connection("filesystem://", transport=broker.Transport, transport_options=options) as connection:
        channel = connection.default_channel
        channel._put("exec", {"body": "x" * 100_000})
        assert seen_while_writing == [[]]  # nothing a worker would take existed yet
        assert [name.endswith(".exec.msg") for name in os.listdir(folder)] == [True]
        assert channel._get("exec") == {"body": "x" * 100_000}


def test_every_batches_and_quality_url_refuses_an_agent_and_sends_visitors_to_sign_in(sent):
    batch, _ = services.start_task_batch(domains=[_domain()], per_domain=1, seed=4)
    urls = ["/batches/", f"/batches/{batch.pk}/", f"/batches/{batch.pk}/live/", f"/batches/{batch.pk}/row/",
            f"/batches/{batch.pk}/resume/", "/batches/start/synthesis/", "/batches/start/tasks/",
            "/batches/start/rollout/", "/quality/"]
    agent, visitor = page_client("Agent"), Client()
    for url in urls:
        assert agent.get(url).status_code == 403, url
        assert agent.post(url).status_code in (403, 405), url  # 405: a page that is only read
        response = visitor.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
    assert sent == []
