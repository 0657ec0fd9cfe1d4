"""python manage.py semantic_eval [--judge rules|llm] [--pairs PATH] [--errors] [--json]"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.semantic import evaluate

DEFAULT_PAIRS = Path(settings.BASE_DIR) / "tests" / "tasks" / "data" / "semantic_pairs.jsonl"


class Command(BaseCommand):
    help = ("Measure the semantic matcher on the labelled pairs: the rules alone, or with the configured "
            "LLM as judge of the pairs only the overlap rule rejects (docs/semantic.md).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--judge", choices=("rules", "llm"), default=None,
                            help="default: SCALEENV_SEMANTIC_JUDGE")
        parser.add_argument("--pairs", type=Path, default=DEFAULT_PAIRS, help="a JSONL file of labelled pairs")
        parser.add_argument("--errors", action="store_true", help="list every pair decided wrongly")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        from tasks.judge import LLMJudge

        pairs = _read_pairs(opts["pairs"])
        method = opts["judge"] or settings.SCALEENV_SEMANTIC_JUDGE
        judge = None
        if method == "llm":
            if not (settings.SCALEENV_LLM["base_url"] and settings.SCALEENV_LLM["model"]):
                raise CommandError("--judge llm needs an LLM: set SCALEENV_LLM_BASE_URL and SCALEENV_LLM_MODEL")
            from environments.services import llm_client

            judge = LLMJudge(llm_client(stage="semantic_eval"))
        shown = [0]

        def progress(done: int, total: int) -> None:  # a line every 10 % (the judge may take minutes)
            if judge is not None and not opts["json"] and (done * 10 // total > shown[0] or done == total):
                shown[0] = done * 10 // total
                self.stderr.write(f"  {done}/{total} pairs")

        result = evaluate(pairs, judge, progress)
        result["method"] = "rules + llm judge" if judge else "rules"
        result["model"] = judge.model if judge else ""
        if opts["json"]:
            if not opts["errors"]:
                result.pop("errors")
            self.stdout.write(json.dumps(result, sort_keys=True))
            return
        self.stdout.write(f"method: {result['method']}{' (' + result['model'] + ')' if judge else ''}; "
                          f"{len(pairs)} pairs from {opts['pairs']}")
        for key, row in sorted(result["accuracy"].items(), key=lambda kv: (kv[0] != "all", kv[0])):
            self.stdout.write(f"  {key:32} {row['right']:>5}/{row['total']:<5} {row['accuracy']:.3f}")
        self.stdout.write(f"  false accepts {result['false_accepts']}, false rejects {result['false_rejects']}; "
                          f"pairs sent to the judge: {result['judged']}")
        if opts["errors"]:
            for error in result["errors"]:
                self.stdout.write(f"  {error['id']} {error['label']!s:5} | {error['gold']} | {error['candidate']} -> "
                                  f"{'; '.join(error['reasons']) or 'no rule fired'}")


def _read_pairs(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc}") from exc
    pairs = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            pair = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path}:{number}: not JSON ({exc})") from exc
        if not (isinstance(pair, dict) and all(isinstance(pair.get(k), str) for k in ("id", "gold", "candidate", "kind"))
                and isinstance(pair.get("label"), bool)):
            raise CommandError(f"{path}:{number}: needs an object with text id, gold, candidate and kind, "
                               "and a true/false label")
        pairs.append(pair)
    if not pairs:
        raise CommandError(f"{path}: no pairs")
    return pairs
