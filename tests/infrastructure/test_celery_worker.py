"""A real Celery worker against Redis and PostgreSQL runs a synthesis; SIGKILL mid-run loses nothing.

Needs PostgreSQL and Redis (CI starts them; `make test-services`). Run with
DATABASE_URL=postgres://... so that the worker subprocess and the test share one database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from environments.models import Batch, BatchItem, Dependency, Domain, Tool, ToolTest

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("SCALEENV_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(autouse=True)
def needs_postgres_and_redis():
    if connection.vendor != "postgresql":
        pytest.skip("set DATABASE_URL=postgres://... (the worker subprocess must share the test database)")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
    yield
    client.flushdb()


def service_env() -> dict[str, str]:
    db = connection.settings_dict
    url = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = dict(os.environ, DATABASE_URL=url, CELERY_BROKER_URL=REDIS_URL, CELERY_RESULT_BACKEND=REDIS_URL,
               SCALEENV_WORKER_WAIT="120", SCALEENV_ITEM_LEASE_SECONDS="600")
    env.pop("SCALEENV_EAGER_JOBS", None)
    return env


def start_worker(log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "scaleenv_site", "worker", "-Q", "exec,llm", "-c", "2",
         "--pool", "prefork", "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=service_env(), stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def synthesize(*extra: str, timeout: float = 300) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", "synthesize", "--domains", "8", "--seed", "21", "--json", *extra],
                            cwd=ROOT, env=service_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def test_a_worker_killed_mid_run_leaves_no_duplicates_and_a_rerun_completes(tmp_path):
    log = tmp_path / "worker.log"
    worker = start_worker(log)
    command = synthesize()
    try:
        wait_for(lambda: BatchItem.objects.filter(status="done").count() >= 2, 180, "two domains to finish")
        wait_for(lambda: BatchItem.objects.filter(status="running").exists(), 60, "a running item")
        kill_group(worker)  # SIGKILL the whole worker: main process and pool children
        command.kill()
        command.wait(timeout=30)
        run = Batch.objects.get()
        assert run.status == "running" and run.done_items < run.total_items
        killed_while_running = list(BatchItem.objects.filter(status="running").values_list("pk", flat=True))
        assert killed_while_running
        before = Domain.objects.count()
        assert before == BatchItem.objects.filter(status="done").count()  # nothing half-written

        worker = start_worker(log)
        rerun = synthesize()
        output, _ = rerun.communicate(timeout=300)
        assert rerun.returncode == 0, output
    finally:
        kill_group(worker)
        if command.poll() is None:
            command.kill()
    run = Batch.objects.get()
    assert (run.status, run.done_items, run.failed_items) == ("done", 8, 0), output
    assert Domain.objects.count() == 8
    assert Domain.objects.values("seed").distinct().count() == 8
    assert BatchItem.objects.filter(status="done", result_id__isnull=False).count() == 8
    for pk in killed_while_running:
        assert BatchItem.objects.get(pk=pk).attempts >= 2
    per_domain = {d.pk: d.tools.count() for d in Domain.objects.all()}
    assert Tool.objects.count() == sum(per_domain.values())
    assert ToolTest.objects.filter(tool__domain__isnull=True).count() == 0
    assert Dependency.objects.count() == sum(d.stats["edges"] for d in Domain.objects.all())
    assert '"domains": 8' in output.strip().splitlines()[-1]


def test_a_pool_child_killed_mid_job_is_redelivered_and_completes(tmp_path):
    log = tmp_path / "worker.log"
    worker = start_worker(log)
    command = synthesize("--domains", "3", "--seed", "22")
    try:
        wait_for(lambda: BatchItem.objects.filter(status="running").exists(), 120, "a running item")
        victim = BatchItem.objects.filter(status="running").first()
        child_pid = int(victim.claimed_by.rsplit(":", 1)[1])
        os.kill(child_pid, signal.SIGKILL)  # only the pool child: the worker survives
        output, _ = command.communicate(timeout=300)
    finally:
        kill_group(worker)
        if command.poll() is None:
            command.kill()
    assert command.returncode == 0, output
    victim.refresh_from_db()
    assert victim.status == "done" and victim.attempts >= 2
    assert Domain.objects.count() == 3


def test_tasks_and_rollouts_run_through_a_real_worker(tmp_path):
    from tasks.models import Run, Task

    log = tmp_path / "worker.log"
    worker = start_worker(log)
    try:
        steps = [["synthesize", "--domains", "2", "--seed", "23"],
                 ["make_tasks", "--per-domain", "3", "--seed", "4"],
                 ["rollout", "--agent", "oracle", "--trials", "2"]]
        outputs = []
        for step in steps:
            proc = subprocess.run([sys.executable, "manage.py", *step, "--json"], cwd=ROOT, env=service_env(),
                                  capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert "No Celery worker claimed" not in proc.stdout  # the worker did the jobs
            outputs.append(proc.stdout.strip().splitlines()[-1])
    finally:
        kill_group(worker)
    assert Task.objects.count() == 6
    assert Run.objects.filter(agent="oracle").count() == 2 * Task.objects.filter(status="verified").count()
    assert '"mean_reward": 1.0' in outputs[2]
