"""python manage.py synthesize --backend procedural --domains N --seed S [--json]
python manage.py synthesize --backend llm --domains N | --domain "pet care" [--description ...]"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from environments import selectors, services
from environments.management.jobrun import BatchCommand
from environments.models import Batch, BatchItem

SUMMARY_KEYS = ("domains", "tools_total", "tools_verified", "tools_failed", "tests_total", "tests_passed", "repairs",
                "edges_total", "edges_witnessed", "edges_data_flow", "edges_pre_post", "edges_shared_state")


class Command(BatchCommand):
    help = "Synthesize executable domains through Celery jobs (in-process when no worker answers)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--backend", default=settings.SCALEENV_DEFAULT_BACKEND, choices=("procedural", "llm"))
        parser.add_argument("--domains", type=int, default=5)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--domain", default="", help="llm only: synthesize this one domain (a name)")
        parser.add_argument("--description", default="", help="llm only: what the --domain is about")
        parser.add_argument("--fault-rate", type=float, default=0.0,
                            help="procedural only: share of tools written with an injected bug, to exercise test and repair")
        self.add_job_arguments(parser)

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            batch, created = services.start_synthesis_batch(backend=opts["backend"], domains=opts["domains"],
                                                            seed=opts["seed"], fault_rate=opts["fault_rate"],
                                                            domain_name=opts["domain"], description=opts["description"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        verb = "Started" if created else "Resuming"
        self.stdout.write(f"{verb} synthesis batch #{batch.pk}: {batch.total_items} domain(s), backend {batch.backend}, "
                          f"seed {batch.params['seed']}")
        wall = self.execute_batch(batch, created, opts)
        self._summary(batch, opts["json"], wall)

    def _summary(self, batch: Batch, as_json: bool, wall_seconds: float) -> None:
        c = {k: int((batch.counters or {}).get(k, 0)) for k in SUMMARY_KEYS}
        tools_share = c["tools_verified"] / c["tools_total"] if c["tools_total"] else 0.0
        tests_share = c["tests_passed"] / c["tests_total"] if c["tests_total"] else 0.0
        edges_share = c["edges_witnessed"] / c["edges_total"] if c["edges_total"] else 0.0
        seconds = batch.seconds if batch.seconds is not None else round(wall_seconds, 2)
        self.stdout.write(self.style.SUCCESS(f"Synthesis batch #{batch.pk}: {batch.status}"))
        self.stdout.write(f"  domains         {c['domains']} done, {batch.failed_items} failed, of {batch.total_items}")
        self.stdout.write(f"  tools           {c['tools_verified']}/{c['tools_total']} verified ({tools_share:.1%}), "
                          f"{c['repairs']} repaired")
        self.stdout.write(f"  tests           {c['tests_passed']}/{c['tests_total']} passed ({tests_share:.1%})")
        self.stdout.write(f"  edges           {c['edges_total']} ({c['edges_data_flow']} data flow, {c['edges_pre_post']} "
                          f"pre/post, {c['edges_shared_state']} shared state), {edges_share:.1%} witnessed")
        texts = selectors.description_figures(
            [pk for pk in batch.items.values_list("result_id", flat=True) if pk is not None])
        self.stdout.write(f"  explained       {texts['descriptions_distinct']} distinct descriptions (names aside), "
                          f"{texts['tools_described']}/{texts['tools']} tools described beyond their name, "
                          f"{texts['policies']} policies")
        llm = self._llm_figures(batch, c["domains"])
        if llm:
            self.stdout.write(f"  llm             {llm['llm_tokens_per_domain']:,} tokens per domain (paper: ~"
                              f"{services.PAPER_TOKENS_PER_DOMAIN:,}), ${llm['llm_cost_per_domain']:.4f} per domain, "
                              f"{llm['llm_calls']} requests ({llm['llm_failed_calls']} failed), "
                              f"{llm['llm_cached_calls']} answered from the cache")
        self.stdout.write(f"  seconds         {seconds}")
        for item in batch.items.filter(status__in=[BatchItem.Status.FAILED, BatchItem.Status.POISONED])[:10]:
            self.stdout.write(self.style.ERROR(f"  item {item.item_key} (seed {item.seed}) {item.status}: {item.error}"))
        if as_json:
            payload = {"batch": batch.pk, "status": batch.status, **c, **texts, "domains_failed": batch.failed_items,
                       "seconds": seconds, "tools_verified_share": round(tools_share, 4),
                       "edges_witnessed_share": round(edges_share, 4), **llm}
            self.stdout.write(json.dumps(payload))

    @staticmethod
    def _llm_figures(batch: Batch, domains: int) -> dict[str, Any]:
        """LLM tokens and cost per domain next to the paper's figure (LLM batches only)."""
        if batch.backend != "llm":
            return {}
        c = batch.counters or {}
        keys = ("llm_calls", "llm_failed_calls", "llm_prompt_tokens", "llm_completion_tokens", "llm_tokens",
                "llm_cost", "llm_cached_calls", "llm_cached_tokens")
        out: dict[str, Any] = {k: c.get(k, 0) for k in keys}
        per = max(1, domains)
        out.update(llm_tokens_per_domain=int(out["llm_tokens"] / per), llm_cost_per_domain=round(out["llm_cost"] / per, 6),
                   paper_tokens_per_domain=services.PAPER_TOKENS_PER_DOMAIN)
        return out
