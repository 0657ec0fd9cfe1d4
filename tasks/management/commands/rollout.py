"""python manage.py rollout --agent oracle|null|random|perturbed --tasks verified|all --trials K [--json]"""

from __future__ import annotations

import json
import statistics
from typing import Any

from django.core.management.base import CommandError, CommandParser

from environments.management.jobrun import JobRunCommand
from environments.models import SynthesisRun
from tasks import selectors, services
from tasks.models import Run
from tasks.rollout.episode import AGENTS


class Command(JobRunCommand):
    help = "Run agents on tasks (one Celery job per trial) and report mean reward and pass^k."
    noun = "runs"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--agent", required=True, choices=sorted(AGENTS))
        parser.add_argument("--tasks", default="verified", choices=("verified", "all"))
        parser.add_argument("--trials", type=int, default=1)
        self.add_job_arguments(parser)

    def progress_text(self, run: SynthesisRun) -> str:
        c = run.counters or {}
        return f"mean reward {c.get('reward_sum', 0) / c['runs']:.3f}" if c.get("runs") else ""

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            run, created = services.start_rollout_run(agent=opts["agent"], which=opts["tasks"], trials=opts["trials"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{'Started' if created else 'Resuming'} rollout run #{run.pk}: {run.total_items} episode(s)")
        wall = self.execute_run(run, created, opts)
        runs = list(Run.objects.filter(batch=run))
        rewards = [r.reward or 0.0 for r in runs]
        k = opts["trials"]
        terminations: dict[str, int] = {}
        for r in runs:
            terminations[r.termination] = terminations.get(r.termination, 0) + 1
        replays = [services.replay_run(r) for r in runs]
        summary = {"run": run.pk, "status": run.status, "agent": opts["agent"], "runs": len(runs),
                   "tasks": len({r.task_id for r in runs}), "trials": k,
                   "mean_reward": round(statistics.mean(rewards), 4) if rewards else 0.0,
                   "pass_hat_k": round(selectors.pass_hat(runs, k), 4), "pass_hat_1": round(selectors.pass_hat(runs, 1), 4),
                   "terminations": terminations, "replays_reproduced": sum(1 for r in replays if r["matches"]),
                   "seconds": run.seconds if run.seconds is not None else round(wall, 2)}
        self.stdout.write(self.style.SUCCESS(f"Rollout run #{run.pk} ({opts['agent']}): {run.status}"))
        self.stdout.write(f"  runs        {len(runs)} on {summary['tasks']} task(s), {k} trial(s) each")
        self.stdout.write(f"  reward      mean {summary['mean_reward']}; pass^{k} {summary['pass_hat_k']}")
        self.stdout.write(f"  ended by    {terminations}")
        self.stdout.write(f"  replays     {summary['replays_reproduced']}/{len(runs)} reproduce their final state hash")
        if opts["json"]:
            self.stdout.write(json.dumps(summary))
