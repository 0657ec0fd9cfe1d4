"""A researcher exports the approved tasks from the browser, downloads the file, and its lines are
exactly the approved tasks; a queued export's row turns to done by itself (htmx polling)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings

from environments import batches
from tasks import services
from tasks.models import Export, ReviewStatus, Task
from tests.conftest import account
from tests.e2e.conftest import shots, sign_in, watch
from tests.tasks.conftest import stored_tasks

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]



@pytest.fixture
def approved(settings, tmp_path) -> list[Task]:
    # Jobs run at enqueue time (no worker here); the review UI is built elsewhere, so the tasks are
    # approved through the one authoritative field directly.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.SCALEENV_EXPORT_DIR = tmp_path / "exports"
    tasks = stored_tasks(seed=41, per_domain=5)
    chosen = [tasks[0], tasks[2], tasks[3]]
    Task.objects.filter(pk__in=[t.pk for t in chosen]).update(review_status=ReviewStatus.APPROVED)
    Task.objects.filter(pk=tasks[1].pk).update(review_status=ReviewStatus.REJECTED)
    return sorted(chosen, key=lambda t: t.pk)


def test_a_researcher_exports_and_downloads_exactly_the_approved_tasks(browser, live_server, approved, tmp_path):
    page = sign_in(browser, live_server, "Researcher", "researcher-e2e")
    problems = watch(page)
    page.goto(f"{live_server.url}/")
    page.click("header nav >> text=Exports")
    assert page.url.endswith("/exports/")
    page.check("input[name=format][value=tasks_jsonl]")
    page.click("#export-start button[type=submit]")
    export = Export.objects.get()
    row = page.locator(f"#export-{export.pk}")
    row.locator(".status-done").wait_for(timeout=30_000)
    assert row.locator("td.num").first.inner_text().strip() == str(len(approved))
    page.screenshot(path=str(shots() / "exports.png"), full_page=True)

    with page.expect_download() as info:
        row.locator("a.download").click()
    download = info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    lines = [json.loads(line) for line in saved.read_text().splitlines()]
    assert [(x["id"], x["content_hash"]) for x in lines] == [(t.pk, t.content_hash) for t in approved]
    assert {x["review"]["status"] for x in lines} == {"approved"}
    assert saved.read_bytes() == (Path(settings.SCALEENV_EXPORT_DIR) / Export.objects.get().file_name).read_bytes()
    assert problems == []


def test_a_queued_export_turns_to_done_without_a_reload(browser, live_server, approved):
    rollout, _ = services.start_rollout_batch(agent="oracle", which="all", trials=1)
    for item in rollout.items.all():
        batches.run_item(item.pk, worker="test")
    researcher = account("Researcher", "researcher-poll")
    export = services.start_export(requester=researcher, format="openai_jsonl", filters={}, enqueue=False)
    page = sign_in(browser, live_server, "Admin", "admin-poll")
    problems = watch(page)
    page.goto(f"{live_server.url}/exports/")
    row = page.locator(f"#export-{export.pk}")
    assert row.locator(".status-queued").count() == 1
    assert page.locator("input[name=all_statuses]").count() == 1  # the every-status box is for Admins
    page.evaluate("window.__marker = 1")  # gone if the page reloads
    services.run_export_here(export)  # what a worker would do
    row.locator(".status-done").wait_for(timeout=15_000)
    assert page.evaluate("window.__marker") == 1
    assert row.locator("a.download").count() == 1  # an Admin may download anyone's export
    assert int(row.locator("td.num").first.inner_text()) == Export.objects.get(pk=export.pk).written > 0
    page.screenshot(path=str(shots() / "exports-admin.png"), full_page=True)
    assert problems == []
