"""A curator signs in, starts a synthesis batch from the browser and watches it finish, live.

The work is done the way the embedded default does it: a real ``celery worker`` process on the
filesystem broker, next to a real ``runserver`` process, both on the test database. Neither runs in
this process, and the page is never reloaded: the progress comes from htmx polling. Both processes
get a private var folder, so their broker folder is this test's alone (no other worker on this
machine can take its jobs, and this worker takes no one else's)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from environments.models import Batch, BatchItem, Domain
from tasks.loadbench import database_url, free_port
from tasks.models import Run, Task
from tests.e2e.conftest import shots, sign_in, watch

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]



def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


@pytest.fixture
def site(transactional_db, tmp_path):
    """A runserver and a Celery worker (filesystem broker) on the test database; yields the URL."""
    var = tmp_path / "var"
    var.mkdir()
    env = {**os.environ, "DATABASE_URL": database_url(), "SCALEENV_VAR_DIR": str(var),
           "CELERY_BROKER_URL": "filesystem://localhost/", "DJANGO_SETTINGS_MODULE": "scaleenv_site.settings",
           "SCALEENV_WORKER_WAIT": "5", "PYTHONUNBUFFERED": "1"}
    env.pop("SCALEENV_EAGER_JOBS", None)
    port = free_port()
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in ("server", "worker")}
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"], cwd=ROOT,
                              env=env, stdout=logs["server"], stderr=subprocess.STDOUT, start_new_session=True)
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "scaleenv_site", "worker", "-Q", "exec,llm",
                               "-c", "2", "--pool", "prefork", "--loglevel", "INFO", "--without-gossip",
                               "--without-mingle", "--without-heartbeat"],
                              cwd=ROOT, env=env, stdout=logs["worker"], stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("the server did not start:\n" + (tmp_path / "server.log").read_text()[-3000:])
                time.sleep(0.3)
        yield SimpleNamespace(url=url, logs=tmp_path)
    finally:
        _stop(worker)
        _stop(server)
        for log in logs.values():
            log.close()


def diagnosis(site=None) -> str:
    """What the items say, and the end of the worker's log (for a batch that did not finish)."""
    lines = [f"{i.batch_id}/{i.item_key} {i.status} attempts={i.attempts} by={i.claimed_by} {i.error[:200]}"
             for i in BatchItem.objects.exclude(status="done").order_by("pk")[:20]]
    if site is not None:
        lines.append((site.logs / "worker.log").read_text(errors="replace")[-4000:])
    return "\n".join(lines)


def watch_batch(page, site=None, timeout: float = 240) -> list[tuple[str, str]]:
    """Follow the live block until the batch has finished; returns the (status, percent) seen."""
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live = page.locator("#batch-live")
        state = (live.get_attribute("data-status") or "", live.locator("progress").get_attribute("value") or "")
        if not seen or seen[-1] != state:
            seen.append(state)
        if state[0] in ("done", "partial", "failed"):
            return seen
        page.wait_for_timeout(250)
    pytest.fail(f"the batch did not finish in {timeout} s; seen {seen}\n{diagnosis(site)}")


def test_a_curator_starts_a_synthesis_batch_and_watches_it_finish(browser, site):
    page = sign_in(browser, site, "Curator", "carla")
    problems = watch(page)
    page.goto(f"{site.url}/batches/")
    page.screenshot(path=str(shots() / "batches-start.png"), full_page=True)

    page.fill("#id_synthesis-domains", "3")
    page.fill("#id_synthesis-seed", "57")
    page.click("#start-synthesis button[type=submit]")
    page.wait_for_url("**/batches/*/")
    batch = Batch.objects.get(kind="synthesis")
    assert page.url.endswith(f"/batches/{batch.pk}/")
    assert "Started Synthesis batch" in page.locator(".messages").inner_text()
    page.evaluate("window.notReloaded = true")  # gone if the page were loaded again
    live = page.locator("#batch-live")
    first = (live.get_attribute("data-status"), live.locator("progress").get_attribute("value"))
    assert first[0] in ("queued", "running") and first[1] != "100", first  # watched from the start

    page.wait_for_selector("#batch-live[data-status=running], #batch-live[data-status=done]", timeout=120_000)
    page.screenshot(path=str(shots() / "batch-running.png"), full_page=True)
    seen = watch_batch(page, site)
    page.screenshot(path=str(shots() / "batch-done.png"), full_page=True)

    assert page.evaluate("window.notReloaded === true"), "the page was reloaded"
    assert seen[-1] == ("done", "100"), seen
    assert page.locator("#batch-counts").inner_text().startswith("3 done")
    assert "tools" in page.locator("#batch-stage").inner_text() and "witnessed" in page.locator("#batch-stage").inner_text()
    assert page.locator("#batch-live[hx-trigger]").count() == 0  # polling stopped
    batch.refresh_from_db()
    assert (batch.status, batch.done_items, Domain.objects.count()) == ("done", 3, 3)
    claimed_by = set(batch.items.values_list("claimed_by", flat=True))
    assert not any(c.startswith("cli:") for c in claimed_by), claimed_by  # the worker did the jobs
    for domain in Domain.objects.all():
        assert page.locator(f"#batch-live a[href='/domains/{domain.slug}/']").count() == 1

    # Tasks and episodes from the same page, then the list of batches and the quality charts.
    page.goto(f"{site.url}/batches/")
    page.fill("#id_tasks-per_domain", "4")
    page.click("#start-tasks button[type=submit]")
    page.wait_for_url("**/batches/*/")
    watch_batch(page, site)
    page.goto(f"{site.url}/batches/")
    page.check("#start-rollout input[value=perturbed]")
    page.select_option("#id_rollout-tasks", "all")
    page.click("#start-rollout button[type=submit]")
    page.wait_for_url("**/batches/?kind=rollout")
    page.goto(f"{site.url}/batches/")
    deadline = time.monotonic() + 240  # rows poll while their batch runs, and stop when it ends
    while page.locator("tr[hx-trigger]").count() and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    assert page.locator("tr[hx-trigger]").count() == 0, f"the rollouts did not finish\n{diagnosis(site)}"
    made = Task.objects.count()
    assert made > 0 and Run.objects.filter(agent="oracle").count() == Run.objects.filter(agent="perturbed").count() == made
    page.screenshot(path=str(shots() / "batches.png"), full_page=True)
    assert page.locator("table.batches tbody tr").count() == 4  # synthesis, tasks, two rollouts
    assert set(Batch.objects.values_list("status", flat=True)) <= {"done", "partial"}

    page.goto(f"{site.url}/quality/")
    assert page.locator("figure.chart svg").count() == 10
    assert page.locator(".summary .card").first.locator(".value").inner_text().endswith("%")
    page.screenshot(path=str(shots() / "quality.png"), full_page=True)
    assert problems == []


def test_a_batch_no_worker_takes_says_so_and_quality_charts_read_over_days(browser, live_server):
    """No worker here (the live server alone): the batch page says so; then the quality page on
    figures spread over a week."""
    from datetime import timedelta

    from django.utils import timezone

    from environments import batches, services as env_services
    from tasks import services
    from tasks.models import ReviewEvent
    from tests.tasks.conftest import stored_tasks

    batch, _ = env_services.start_synthesis_batch(backend="procedural", domains=2, seed=58)
    Batch.objects.filter(pk=batch.pk).update(created_at=timezone.now() - timedelta(seconds=40))
    page = sign_in(browser, live_server, "Viewer", "vera")
    problems = watch(page)
    page.goto(f"{live_server.url}/batches/{batch.pk}/")
    assert "No worker has taken an item of this batch for 4" in page.locator("#no-worker").inner_text()
    assert page.locator("#batch-live form.resume").count() == 0  # a viewer may not send jobs
    page.screenshot(path=str(shots() / "batch-no-worker.png"), full_page=True)
    page.goto(f"{live_server.url}/batches/")
    assert page.locator("#start-synthesis").count() == 0

    tasks = stored_tasks(seed=31, per_domain=12)
    for agent in ("oracle", "perturbed"):
        rollout, _ = services.start_rollout_batch(agent=agent, which="all", trials=1)
        for item in rollout.items.all():
            batches.run_item(item.pk, worker="test")
    now = timezone.now()
    for i, task in enumerate(tasks):
        day = now - timedelta(days=i % 6)
        status = ("approved", "approved", "rejected", "pending", "needs_changes", "pending")[i % 6]
        Task.objects.filter(pk=task.pk).update(created_at=day, review_status=status,
                                               reviewed_at=None if status == "pending" else day)
        if status == "rejected":
            event = ReviewEvent.objects.create(task=task, action="reject", from_status="in_review",
                                               to_status="rejected", reasons=["unrealistic-data", "other"])
            ReviewEvent.objects.filter(pk=event.pk).update(at=day)
    Run.objects.filter(task__in=tasks[::2]).update(created_at=now - timedelta(days=2))
    page.goto(f"{live_server.url}/quality/")
    assert page.locator("figure.chart svg").count() == 10
    assert "one point per day" in page.content()
    page.screenshot(path=str(shots() / "quality-over-days.png"), full_page=True)
    page.goto(f"{live_server.url}/quality/?backend=llm")
    assert "Nothing was made in this range" in page.content()
    assert problems == []
