"""python manage.py probe_tasks --calls 1000 [--seed 1] [--json]"""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from jsonschema import Draft202012Validator, FormatChecker

from environments.runtime.statekit import copy_state
from tasks import selectors, services
from tasks.instantiation import domain_bundle
from tasks.models import Task
from tasks.probe import random_arguments


class Command(BaseCommand):
    help = ("Make random schema-valid calls of tools inside stored tasks' subgraphs, on each task's s0, and "
            "count the outcomes (an exploring agent must never meet an unexpected_failure).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--calls", type=int, default=1000)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        rng = random.Random(opts["seed"])
        tasks = list(Task.objects.filter(status=Task.Status.VERIFIED).select_related("domain").only(
            "id", "s0", "subgraph", "domain"))
        if not tasks:
            raise CommandError("no verified task to probe (make some with make_tasks first)")
        outcomes: Counter[str] = Counter()
        failures: list[str] = []
        invalid = 0
        for _ in range(opts["calls"]):
            task = rng.choice(tasks)
            view = selectors.domain_view(task.domain)
            tool = view.tools[rng.choice(sorted(t for t in task.subgraph if t in view.tools))]
            arguments = random_arguments(tool.parameters, task.s0, rng)
            if list(Draft202012Validator(tool.parameters, format_checker=FormatChecker()).iter_errors(arguments)):
                invalid += 1  # the generator's bug, not the tool's: counted apart
                continue
            sandbox = services.sandbox_pool().get(domain_bundle(view))
            result = sandbox.run_sequence([{"tool": tool.name, "args": arguments}], state=copy_state(task.s0),
                                          stop_on_failure=False, diffs=False)["results"][0]
            outcomes[result["outcome"]] += 1
            if result["outcome"] == "unexpected_failure" and len(failures) < 10:
                failures.append(f"task {task.pk} {tool.name}({json.dumps(arguments)[:160]}): "
                                f"{result.get('error_type')}: {str(result.get('error'))[:200]}")
        self.stdout.write(f"{sum(outcomes.values())} schema-valid calls on {len(tasks)} verified tasks: "
                          + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
        for line in failures:
            self.stdout.write(self.style.ERROR(f"  {line}"))
        if opts["json"]:
            self.stdout.write(json.dumps({"calls": sum(outcomes.values()), "outcomes": dict(outcomes),
                                          "generator_invalid": invalid, "tasks": len(tasks)}))
