"""A curator reviews tasks with the keyboard in a real browser; generated content stays inert."""

from __future__ import annotations


import pytest

from tasks.models import Review, ReviewEvent, Task
from tests.e2e.conftest import shots, sign_in, watch
from tests.tasks.conftest import stored_tasks

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]



def test_a_curator_approves_one_task_and_rejects_another_with_the_keyboard(browser, live_server):
    tasks = stored_tasks(seed=9, per_domain=4)
    page = sign_in(browser, live_server, "Curator", "carla")
    problems = watch(page)
    page.goto(f"{live_server.url}/review/")
    assert page.locator(".count-pending b").inner_text() == str(len(tasks))
    page.screenshot(path=str(shots() / "review-queue.png"), full_page=True)

    page.keyboard.press("j")  # next task for me: claims it and opens it
    page.wait_for_selector("#review-panel button.approve")
    first = int(page.url.split("/tasks/")[1].split("/")[0])
    assert "You hold this task" in page.locator("#review-panel").inner_text()
    page.screenshot(path=str(shots() / "review-task.png"), full_page=True)

    page.keyboard.press("a")  # approve: on to the next task, claimed for me
    page.wait_for_url(lambda url: f"/tasks/{first}/" not in url)
    page.wait_for_selector("#review-panel button.approve")
    second = int(page.url.split("/tasks/")[1].split("/")[0])
    assert Task.objects.get(pk=first).review_status == "approved" and second != first

    page.keyboard.press("r")  # reject: the reason picker opens
    assert page.locator("#reason-picker").is_visible()
    page.keyboard.press("Enter")  # no reason yet: refused, nothing decided
    page.wait_for_selector("#review-panel .banner.warn")
    assert "needs at least one reason" in page.locator("#review-panel").inner_text()
    assert Task.objects.get(pk=second).review_status == "in_review"
    page.keyboard.press("r")
    page.keyboard.press("1")  # the first reason
    assert page.locator('#reason-picker input[data-shortcut="1"]').is_checked()
    page.keyboard.press("c")
    page.keyboard.type("the opening names the record")
    page.keyboard.press("Escape")  # leave the comment box
    page.screenshot(path=str(shots() / "review-reject-picker.png"), full_page=True)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: f"/tasks/{second}/" not in url)
    rejected = Review.objects.get(task_id=second)
    assert rejected.verdict == "rejected" and rejected.comment == "the opening names the record"
    assert list(rejected.reasons.values_list("code", flat=True)) == ["unsolvable"]
    assert Task.objects.get(pk=second).review_status == "rejected"
    assert ReviewEvent.objects.filter(task_id=second, action="reject").exists()

    page.keyboard.press("?")
    assert page.locator("#shortcut-help").is_visible()
    page.screenshot(path=str(shots() / "review-shortcuts.png"))
    page.keyboard.press("Escape")
    assert not page.locator("#shortcut-help").is_visible()
    # The one refused request is the reject without a reason, answered 400 on purpose.
    assert [p for p in problems if "status of 400" not in p] == [] and len(problems) == 1


def test_generated_markup_renders_as_text_and_never_runs(browser, live_server):
    task = stored_tasks(seed=9, per_domain=2)[0]
    hostile = ('<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
               '<div hx-get="/api/tasks/" hx-trigger="load">pulled</div>')
    scenario = dict(task.user_scenario)
    scenario["instructions"] = {**scenario["instructions"], "reason_for_call": hostile}
    Task.objects.filter(pk=task.pk).update(user_scenario=scenario, intent=hostile[:190])
    page = sign_in(browser, live_server, "Curator", "carla")
    problems = watch(page)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    for url in (f"/tasks/{task.pk}/", "/review/", "/tasks/"):
        page.goto(f"{live_server.url}{url}")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.pwned") is None, url
        assert "<script>window.pwned = 1</script>" in page.locator("main").inner_text(), url
    assert not any("/api/tasks/" in r for r in requested)
    assert problems == []
