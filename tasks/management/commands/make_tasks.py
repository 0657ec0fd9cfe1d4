"""python manage.py make_tasks --domains all|SLUG... --per-domain N --seed S [--backend llm | --scenarios llm] [--json]"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from typing import Any

from django.core.management.base import CommandError, CommandParser

from environments.management.jobrun import BatchCommand
from environments.models import Domain
from tasks import services
from tasks.models import Task


class Command(BatchCommand):
    help = "Instantiate verifiable tasks by graph expansion, audit them, and store them (Celery jobs)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--domains", nargs="+", default=["all"], help="'all' or domain slugs")
        parser.add_argument("--per-domain", type=int, default=5)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--complexity", default="mix", help="easy, medium, hard or mix (rotates the three)")
        parser.add_argument("--backend", default="procedural", choices=("procedural", "llm"),
                            help="llm: an LLM writes the chain, the near-miss rows, the scenario and the gate's opinion")
        parser.add_argument("--scenarios", default="procedural", choices=("procedural", "llm"),
                            help="llm: procedural structure, LLM-written user scenarios")
        self.add_job_arguments(parser)

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["domains"] == ["all"]:
            domains = list(Domain.objects.exclude(status=Domain.Status.FAILED).order_by("slug"))
        else:
            domains = list(Domain.objects.filter(slug__in=opts["domains"]))
            missing = sorted(set(opts["domains"]) - {d.slug for d in domains})
            if missing:
                raise CommandError(f"unknown domain(s): {', '.join(missing)}")
        try:
            batch, created = services.start_task_batch(domains=domains, per_domain=opts["per_domain"], seed=opts["seed"],
                                                   complexity=opts["complexity"], backend=opts["backend"],
                                                   scenarios=opts["scenarios"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{'Started' if created else 'Resuming'} task batch #{batch.pk}: {batch.total_items} task(s) "
                          f"from {len(domains)} domain(s)")
        wall = self.execute_batch(batch, created, opts)
        tasks = list(Task.objects.filter(pk__in=batch.items.values_list("result_id", flat=True)))
        flags: dict[str, int] = {}
        for t in tasks:
            for f in t.audit_flags:
                flags[f["code"]] = flags.get(f["code"], 0) + 1
        verified = [t for t in tasks if t.status == Task.Status.VERIFIED]
        kinds = {k: sum(1 for t in tasks if t.kind == k) for k in Task.Kind.values}
        writes = [t for t in tasks if t.kind == Task.Kind.WRITE]
        figures = [(t.evaluation or {}).get("figures") or {} for t in tasks]
        sizes = [t.h_size for t in tasks]
        share = (lambda n, d: round(n / d, 4) if d else 0.0)
        summary = {
            "batch": batch.pk, "status": batch.status, "tasks_created": len(tasks), "tasks_verified": len(verified),
            "tasks_failed": batch.failed_items, "flags": flags, "kinds": kinds,
            "refusal_share": share(kinds["refusal"], len(tasks)), "question_share": share(kinds["question"], len(tasks)),
            "needs_found_id_share": share(sum(1 for f in figures if f.get("needs_found_id")), len(tasks)),
            "writes_own_share": share(sum(1 for t in writes if ((t.evaluation or {}).get("figures") or {}).get("writes_own")),
                                      len(writes)),
            "intents": dict(sorted(Counter(t.intent.split(":")[0] for t in tasks).items())),
            "mean_subgraph_size": round(statistics.mean(sizes), 2) if sizes else 0.0,
            "median_subgraph_size": statistics.median(sizes) if sizes else 0,
            "mean_chain_length": round(statistics.mean(t.chain_length for t in tasks), 2) if tasks else 0.0,
            "mean_distractors": round(statistics.mean(t.distractor_count for t in tasks), 2) if tasks else 0.0,
            "seconds": batch.seconds if batch.seconds is not None else round(wall, 2),
        }
        stages = (batch.params or {}).get("llm_stages") or []
        if stages:
            from environments.models import LLMCall
            from tasks.instantiation.llm import llm_figures

            calls = list(LLMCall.objects.filter(batch=batch).values("prompt_tokens", "completion_tokens", "cached",
                                                                    "outcome", "cost"))
            summary["llm_stages"] = stages
            summary.update(llm_figures(calls, len(tasks)))
            summary["llm_rejected"] = dict(Counter(f["code"] for t in tasks for f in t.audit_flags
                                                   if f["code"].startswith("llm_")))
        self.stdout.write(self.style.SUCCESS(f"Task batch #{batch.pk}: {batch.status}"))
        self.stdout.write(f"  tasks       {len(verified)}/{len(tasks)} verified ({share(len(verified), len(tasks)):.1%})"
                          if tasks else "  tasks       none")
        self.stdout.write(f"  kinds       {kinds['write']} write · {kinds['question']} question "
                          f"({summary['question_share']:.1%}) · {kinds['refusal']} refusal ({summary['refusal_share']:.1%})")
        self.stdout.write(f"  ids found   {summary['needs_found_id_share']:.1%} of tasks need an id the user does not "
                          f"know; {summary['writes_own_share']:.1%} of write tasks change only the user's records")
        self.stdout.write(f"  flags       {flags or 'none'}")
        self.stdout.write(f"  |H|         mean {summary['mean_subgraph_size']}, median {summary['median_subgraph_size']}")
        self.stdout.write(f"  chain       mean length {summary['mean_chain_length']}; distractors mean {summary['mean_distractors']}")
        if stages:
            self.stdout.write(f"  llm         stages {', '.join(stages)}: {summary['llm_requests']} request(s), "
                              f"{summary['llm_cached']} from the cache, {summary['llm_failed']} failed; "
                              f"{summary['tokens_per_task']:,.0f} tokens per task (paper: ~93.2k), "
                              f"${summary['cost_per_task']:.4f} per task; rejected {summary['llm_rejected'] or 'none'}")
        self.stdout.write(f"  seconds     {summary['seconds']}")
        for item in batch.items.filter(status__in=["failed", "poisoned"])[:10]:
            self.stdout.write(self.style.ERROR(f"  item {item.item_key} {item.status}: {item.error}"))
        if opts["json"]:
            self.stdout.write(json.dumps(summary))
