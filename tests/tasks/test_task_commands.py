"""make_tasks and rollout through the job machinery; replaying a run reproduces its final hash."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from tasks import services
from tasks.models import Run, Task

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def domain(stored_domain):
    return stored_domain


def command(name, *args):
    out = StringIO()
    call_command(name, *args, "--json", "--in-process", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_make_tasks_stores_audited_tasks_and_reports_figures(domain):
    summary = command("make_tasks", "--domains", domain.slug, "--per-domain", "6", "--seed", "3")
    for key in ("tasks_created", "tasks_verified", "flags", "mean_subgraph_size", "mean_chain_length", "seconds"):
        assert key in summary
    assert summary["tasks_created"] == 6 == Task.objects.count()
    assert summary["tasks_verified"] == Task.objects.filter(status="verified").count() >= 5
    task = Task.objects.first()
    assert task.gate and task.subgraph and task.s0 and task.s_gt and task.instruction
    again = command("make_tasks", "--domains", domain.slug, "--per-domain", "6", "--seed", "3")
    assert again["tasks_created"] == 6 and Task.objects.count() == 6  # a re-run changes nothing


def test_rollouts_score_agents_and_replays_reproduce_final_states(domain):
    command("make_tasks", "--domains", domain.slug, "--per-domain", "4", "--seed", "5")
    oracle = command("rollout", "--agent", "oracle", "--tasks", "verified", "--trials", "2")
    null = command("rollout", "--agent", "null", "--tasks", "verified", "--trials", "1")
    perturbed = command("rollout", "--agent", "perturbed", "--tasks", "verified", "--trials", "1")
    assert (oracle["mean_reward"], oracle["pass_hat_k"]) == (1.0, 1.0)
    assert null["mean_reward"] == 0.0 and perturbed["mean_reward"] == 0.0
    assert oracle["runs"] == 2 * Task.objects.filter(status="verified").count()
    for run in Run.objects.all():
        assert services.replay_run(run)["matches"], run.pk
        assert run.termination in ("agent_stop", "user_stop") and run.breakdown["reasons"] == [] or run.reward == 0.0


def test_unknown_domains_and_agents_are_clear_errors(domain):
    with pytest.raises(CommandError, match="unknown domain"):
        call_command("make_tasks", "--domains", "nope", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="no task to run"):
        call_command("rollout", "--agent", "oracle", stdout=StringIO(), stderr=StringIO())
