"""python manage.py export --format tasks_jsonl|openai_jsonl [--domain SLUG ...] [--filter KEY=VALUE ...]
[--all-statuses] [--out PATH] [--json]"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks import selectors, services
from tasks.models import Export


class Command(BaseCommand):
    help = ("Export tasks (approved only, unless --all-statuses) through the same service and job as the "
            "Exports page, in this process, and print where the file is.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", required=True, choices=Export.Format.values)
        parser.add_argument("--domain", action="append", default=[], metavar="SLUG",
                            help="only tasks of this domain (repeat for several)")
        parser.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                            help=f"a review-queue filter ({', '.join(selectors.EXPORT_FILTER_KEYS)}), e.g. kind=refusal")
        parser.add_argument("--all-statuses", action="store_true",
                            help="every review status, not only approved tasks (the command line is trusted as an Admin)")
        parser.add_argument("--out", type=Path, help="also copy the finished file here")
        parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")

    def handle(self, *args: Any, **opts: Any) -> None:
        rss_before_mb = _resident_mb()  # bench_export reports it
        filters: dict[str, Any] = {}
        for pair in opts["filter"]:
            key, sep, value = pair.partition("=")
            if not sep:
                raise CommandError(f"--filter takes KEY=VALUE, not {pair!r}")
            filters[key.strip()] = value.strip()
        if opts["domain"]:
            filters["domain"] = opts["domain"]
        try:
            export = services.start_export(requester=None, format=opts["format"], filters=filters,
                                           all_statuses=opts["all_statuses"], enqueue=False)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Export #{export.pk} ({export.get_format_display()}, "
                          f"{'approved tasks' if export.only_approved else 'every review status'})")
        started = time.monotonic()
        with services.export_progress(self._show):
            export = services.run_export_here(export)
        seconds = time.monotonic() - started
        if sys.stdout.isatty():
            self.stdout.write("")
        if export.status != Export.Status.DONE:
            raise CommandError(f"export #{export.pk} failed: {export.error}")
        path = selectors.export_file(export)
        self.stdout.write(f"{export.written} lines, {export.size_bytes / 1e6:.1f} MB in {seconds:.1f} s "
                          f"({export.written / seconds if seconds else 0:.0f} lines/s); sha256 {export.sha256}")
        self.stdout.write(f"File: {path}")
        sidecar = selectors.export_file(export, "metadata")
        if sidecar is not None:
            self.stdout.write(f"Provenance of each line: {sidecar}")
        if opts["out"]:
            shutil.copyfile(path, opts["out"])
            self.stdout.write(f"Copied to {opts['out']}")
        if opts["json"]:
            self.stdout.write(json.dumps({"export": export.pk, "format": export.format, "lines": export.written,
                                          "bytes": export.size_bytes, "sha256": export.sha256, "seconds": round(seconds, 3),
                                          "path": str(path), "out": str(opts["out"]) if opts["out"] else None,
                                          "rss_before_mb": round(rss_before_mb, 1), "peak_rss_mb": round(_peak_mb(), 1)}))

    def _show(self, written: int, total: int) -> None:
        line = f"  {written}/{total} lines"
        if sys.stdout.isatty():
            self.stdout.write("\r" + line, ending="")
            self.stdout.flush()
        else:
            self.stdout.write(line)


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _resident_mb() -> float:
    """This process's resident memory now (Linux: VmRSS), else its peak so far."""
    return _status_mb("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_mb() -> float:
    """This process's peak resident memory (Linux: VmHWM). Not ``ru_maxrss``: that one keeps the
    peak from before ``exec``, i.e. the size of the parent that spawned this process."""
    return _status_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
