"""python manage.py rollout --agent oracle|null|random|perturbed|llm [--user scripted|llm] --tasks verified|all --trials K [--json]"""

from __future__ import annotations

import json
import statistics
from typing import Any

from django.core.management.base import CommandError, CommandParser

from environments.management.jobrun import BatchCommand
from tasks import selectors, services
from tasks.models import Run
from tasks.rollout.episode import AGENTS


class Command(BatchCommand):
    help = "Run agents on tasks (one Celery job per trial) and report mean reward and pass^k."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--agent", required=True, choices=sorted([*AGENTS, "llm"]))
        parser.add_argument("--user", default="scripted", choices=("scripted", "llm"),
                            help="the user simulator: scripted (deterministic) or llm (SCALEENV_LLM_MODEL_USER)")
        parser.add_argument("--tasks", default="verified", choices=("verified", "all"))
        parser.add_argument("--trials", type=int, default=1)
        self.add_job_arguments(parser)

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            batch, created = services.start_rollout_batch(agent=opts["agent"], which=opts["tasks"], trials=opts["trials"],
                                                         user=opts["user"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{'Started' if created else 'Resuming'} rollout batch #{batch.pk}: {batch.total_items} episode(s)")
        wall = self.execute_batch(batch, created, opts)
        runs = list(Run.objects.filter(batch=batch).select_related("task", "task__domain"))
        rewards = [r.reward or 0.0 for r in runs]
        k = opts["trials"]
        terminations: dict[str, int] = {}
        for r in runs:
            terminations[r.termination] = terminations.get(r.termination, 0) + 1
        replays = [services.replay_run(r) for r in runs]
        summary = {"batch": batch.pk, "status": batch.status, "agent": opts["agent"], "user": opts["user"],
                   "runs": len(runs),
                   "tasks": len({r.task_id for r in runs}), "trials": k,
                   "mean_reward": round(statistics.mean(rewards), 4) if rewards else 0.0,
                   "pass_hat_k": round(selectors.pass_hat(runs, k), 4), "pass_hat_1": round(selectors.pass_hat(runs, 1), 4),
                   "terminations": terminations, "replays_reproduced": sum(1 for r in replays if r["matches"]),
                   "seconds": batch.seconds if batch.seconds is not None else round(wall, 2)}
        self.stdout.write(self.style.SUCCESS(f"Rollout batch #{batch.pk} ({opts['agent']}): {batch.status}"))
        self.stdout.write(f"  runs        {len(runs)} on {summary['tasks']} task(s), {k} trial(s) each")
        self.stdout.write(f"  reward      mean {summary['mean_reward']}; pass^{k} {summary['pass_hat_k']}")
        self.stdout.write(f"  ended by    {terminations}")
        self.stdout.write(f"  replays     {summary['replays_reproduced']}/{len(runs)} reproduce their final state hash")
        failures = [r.breakdown["failure"] for r in runs if (r.breakdown or {}).get("failure")]
        if "llm" in (opts["agent"], opts["user"]):
            from environments.models import LLMCall

            calls = LLMCall.objects.filter(batch=batch)
            summary["llm_requests"] = calls.filter(cached=False).count()
            summary["llm_cached"] = calls.filter(cached=True).count()
            summary["failures"] = failures
            self.stdout.write(f"  llm         {summary['llm_requests']} request(s), {summary['llm_cached']} from the cache")
        for failure in failures[:5]:
            self.stdout.write(self.style.ERROR(f"  {failure['who']} error ({failure['outcome']}): {failure['message'][:200]}"))
        if opts["json"]:
            self.stdout.write(json.dumps(summary))
