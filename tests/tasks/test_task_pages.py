"""Task and run pages: audit flags with reasons, the gold diff, trajectories, escaping."""

import pytest

from environments import batches
from tasks import services
from tasks.models import Run
from tests.conftest import page_client
from tests.tasks.conftest import stored_tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def task():
    tasks = stored_tasks(seed=11, per_domain=2)
    rollout, _ = services.start_rollout_batch(agent="oracle", which="all", trials=1)
    for item in rollout.items.all():
        batches.run_item(item.pk, worker="test")
    return tasks[0]


def test_task_pages_show_flags_with_reasons_and_escape_generated_text(task):
    task.script = dict(task.script, opening='<script>alert(1)</script> please')
    task.user_scenario["instructions"]["reason_for_call"] = '<img src=x onerror=alert(1)> reason'
    task.audit_flags = [{"code": "ungrounded_argument", "blocking": True, "reason": "not in the instruction: x"}]
    task.status = "flagged"
    task.save()
    listing = page_client().get("/tasks/?status=flagged").content.decode()
    assert "ungrounded_argument: not in the instruction: x" in listing and "<script>alert(1)" not in listing
    page = page_client().get(f"/tasks/{task.pk}/").content.decode()
    assert "&lt;script&gt;" in page and "&lt;img src=x" in page and "<img src=x" not in page
    assert "s0 → s_gt" in page and "Gate decisions" in page
    assert "User scenario" in page and "Known info" in page and task.user_scenario["persona"] in page
    assert "(the agent's system prompt)" in page and task.domain.policy.splitlines()[0][:30] in page


def test_run_page_shows_the_trajectory(task):
    run = Run.objects.filter(task=task).first()
    page = page_client().get(f"/runs/{run.pk}/").content.decode()
    assert f"reward {run.reward}" in page
    first_call = run.step_rows.filter(kind="tool_call").order_by("index").first()
    assert first_call is not None and first_call.tool in page


def test_the_dashboard_shows_task_and_rollout_batches_with_their_own_counts(task):
    page = page_client().get("/").content.decode()
    assert "Tasks batch #" in page and "tasks · " in page and "verified" in page
    assert "Rollout batch #" in page and "episodes · mean reward 1.000" in page
