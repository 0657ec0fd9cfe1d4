"""Trajectory replay in a real browser: play a run to its last step, jump to the first failing step
(with the button and with `f`), walk steps with j/k and the slider across server-side pages, expand
and collapse every step with `e`. No page error, no CSP violation. Screenshots in var/screenshots/."""

from __future__ import annotations


import pytest

from environments import batches
from tasks import selectors, services
from tasks.models import Run, RunStep
from tests.tasks.conftest import stored_tasks
from tests.tasks.test_run_replay import wrong_write
from tests.e2e.conftest import shots, watch

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]



def current(page) -> int:
    return int(page.get_attribute(".step.is-current", "data-i"))


def top(page) -> None:
    page.mouse.wheel(0, -100_000)
    page.wait_for_timeout(300)


def wait_current(page, index: int) -> None:
    page.wait_for_selector(f"#step-{index}.is-current .step-body .card", timeout=10_000)


@pytest.fixture
def failed_run():
    """A run with reward 0, a table that fails, and a call that wrote the wrong value."""
    stored_tasks(seed=41, per_domain=2)
    for agent in ("perturbed", "collateral"):
        batch, _ = services.start_rollout_batch(agent=agent, which="all", trials=1)
        for item in batch.items.all():
            batches.run_item(item.pk, worker="test")
    # What a perturbed run does depends on its task's id (its random seed): take the longest run
    # whose first failing step is a call that wrote a wrong value.
    found = [(run, selectors.replay_page(run)["failing"]) for run in Run.objects.all()]
    found = [(run, failing) for run, failing in found if failing and failing.rule == "wrote_wrong_value"]
    assert found, "no run wrote a wrong value"
    return max(found, key=lambda pair: (pair[0].agent == "perturbed", pair[0].step_count))


def test_replay_a_run_to_its_last_step_and_jump_to_the_first_failing_step(curator_page, live_server, failed_run):
    run, failing = failed_run
    page = curator_page
    problems = watch(page)
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    page.wait_for_selector("#final-state .final-state")  # the side panel loads after the page
    last = run.step_count - 1

    # Play (fastest speed) until the replay stops by itself on the last step.
    page.select_option("#replay-speed", "500")
    page.click('[data-act="play"]')
    assert page.get_attribute('[data-act="play"]', "aria-pressed") == "true"
    page.wait_for_selector('[data-act="play"][aria-pressed="false"]', timeout=4_000 + run.step_count * 1_000)
    wait_current(page, last)
    assert page.input_value("#step-slider") == str(last)
    assert page.text_content("#step-position").strip() == f"#{last} · {last + 1} of {run.step_count}"
    assert f"step={last}" in page.url
    # Earlier steps the replay opened were closed again as it moved on.
    assert page.locator(".step details[open]").count() == 1

    # Jump to the first failing step with the key: its call card and the diff that went wrong show.
    page.keyboard.press("f")
    wait_current(page, failing.index)
    card = page.locator(f"#step-{failing.index} .step-body")
    step = run.step_rows.get(index=failing.index)
    assert step.tool in card.locator(".card.call").inner_text()
    failing_tables = {t["table"] for t in run.breakdown["failing_tables"]}
    diff_text = card.locator(".card.diff").inner_text()
    assert any(table in diff_text for table in failing_tables & set(step.diff))
    assert page.locator(f"#step-{failing.index} .failing-label").is_visible()
    assert page.locator(f'#step-strip .tick.is-failing[data-i="{failing.index}"]').count() == 1
    top(page)  # the sticky controls back at the top of the full-page picture
    page.screenshot(path=str(shots() / "run-replay.png"), full_page=True)

    # Back and forth with the keys and the buttons; the header link jumps there too.
    page.keyboard.press("j")
    wait_current(page, failing.index + 1)
    page.keyboard.press("k")
    page.keyboard.press("ArrowLeft")
    wait_current(page, failing.index - 1)
    page.click('[data-act="first"]')
    wait_current(page, 0)
    page.click("#jump-failing")
    wait_current(page, failing.index)

    # The final state against s_gt marks the wrong cells and shows each column's policy.
    assert page.locator("#final-state td.c-wrong").count() >= 1
    assert page.locator("#final-state th.pol-exact").count() >= 1
    # The help lists this page's keys and closes with Esc.
    page.keyboard.press("?")
    assert page.locator("#shortcut-help").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("#shortcut-help").is_visible()
    assert problems == []


def test_a_long_run_pages_its_steps_and_loads_bodies_lazily(curator_page, live_server):
    task = stored_tasks(seed=42, per_domain=1)[0]
    # A consistent run: the final state is s_gt with one cell wrong, the breakdown is the real
    # reward's on it, and the call at 113 (a mutating tool) wrote that cell; the others only read.
    w = wrong_write(task, value_at=113)
    table, pk, column = w["table"], w["pk"], w["column"]
    run = Run.objects.create(task=task, agent="random", reward=w["reward"], termination="max_steps", step_count=130,
                             final_state=w["final"], breakdown=w["breakdown"], seconds=0.42)
    RunStep.objects.bulk_create([RunStep(
        run=run, index=i, kind=("user", "message", "tool_call")[i % 3],
        tool=(w["writer"] if i == 113 else w["reader"]) if i % 3 == 2 else "",
        arguments={"n": i} if i % 3 == 2 else None, outcome="success" if i % 3 == 2 else "",
        observation=f'{{"n": {i}}}' if i % 3 == 2 else "", content=f"message {i}" if i % 3 != 2 else "",
        diff={table: {"added": {}, "removed": {}, "changed": {pk: {column: [w["gold"], "v113"]}}}} if i == 113 else {})
        for i in range(130)])
    page = curator_page
    problems = watch(page)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/step" in r.url else None)  # pages and bodies
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    assert page.locator(".step").count() == 50
    assert page.locator(".step .card").count() == 0  # no body until a step opens
    page.keyboard.press("f")  # on page 3: that page loads, then the step opens
    wait_current(page, 113)
    assert page.locator("#step-100").count() == 1 and page.locator("#step-0").count() == 0
    assert page.locator(".step .step-body .card").count() >= 1
    assert page.locator("#step-113 .failing-label").is_visible()

    # The slider moves across pages too.
    page.locator("#step-slider").fill("3")
    page.locator("#step-slider").dispatch_event("change")
    wait_current(page, 3)
    assert page.locator("#step-49").count() == 1

    # e expands every step on the page in one request, e again collapses them (the current one stays).
    before = len(requests)
    page.keyboard.press("e")
    page.wait_for_selector("#step-49 details[open] .step-body .card")  # the page CSP forbids evaluated strings
    assert page.locator(".step details[open] .step-body .card").count() == 50
    assert len(requests) - before == 1
    page.screenshot(path=str(shots() / "run-replay-expanded.png"), full_page=False)
    page.keyboard.press("e")
    assert page.locator(".step details[open]").count() == 1
    page.click('[data-act="last"]')
    wait_current(page, 129)
    assert page.text_content("#step-position").strip() == "#129 · 130 of 130"
    top(page)
    # Header, breakdown and final state tell one story.
    page.wait_for_selector("#final-state .final-state")
    assert page.locator("#final-state .fs-stale").count() == 0
    assert page.locator("#final-state td.c-wrong").first.inner_text().startswith("v113")
    assert f"Every table ({len(task.s_gt)})" in page.inner_text(".replay-side")
    page.screenshot(path=str(shots() / "run-replay-long.png"), full_page=True)
    assert problems == []
