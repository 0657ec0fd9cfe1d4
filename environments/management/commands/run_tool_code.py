"""python manage.py run_tool_code --code FILE --tool NAME --args JSON --state FILE [--json]"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from environments import services
from environments.runtime.codecheck import check_tool_code
from environments.runtime.executor import EnvironmentBundle, Sandbox, SandboxError
from environments.runtime.probes import sandbox_status


def _read_json(path: str, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CommandError(f"{what} file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise CommandError(f"{what} file {path} is not valid JSON: {exc}") from None


class Command(BaseCommand):
    help = "Run one tool by hand in the sandbox and print outcome, value or error, state diff and state hash."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--code", required=True, help="Python file defining the tool function")
        parser.add_argument("--tool", required=True, help="name of the tool function")
        parser.add_argument("--args", dest="call_args", default="{}", help="JSON object of arguments")
        parser.add_argument("--state", required=True, help="JSON file with the state {table: {pk: row}}")
        parser.add_argument("--schema", help="JSON file with the schema (enables validation after writes)")
        parser.add_argument("--raises", default="", help="comma-separated exception names the tool declares")
        parser.add_argument("--clock", default="2026-03-02T09:00:00Z")
        parser.add_argument("--id-seed", type=int, default=0)
        parser.add_argument("--timeout", type=float, default=None, help="wall deadline in seconds")
        parser.add_argument("--skip-check", action="store_true", help="run even if the static check finds problems")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            code = Path(opts["code"]).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CommandError(f"code file not found: {opts['code']}") from None
        try:
            call_args = json.loads(opts["call_args"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--args is not valid JSON: {exc}") from None
        if not isinstance(call_args, dict):
            raise CommandError("--args must be a JSON object")
        state = _read_json(opts["state"], "state")
        if not isinstance(state, dict) or not all(isinstance(v, dict) for v in state.values()):
            raise CommandError("the state must be a JSON object {table: {primary_key: row}}")
        schema = _read_json(opts["schema"], "schema") if opts["schema"] else {"tables": {}}
        problems = check_tool_code(code, opts["tool"])
        if problems and not opts["skip_check"]:
            raise CommandError("static check failed:\n  " + "\n  ".join(map(str, problems)) +
                               "\n(use --skip-check to run it in the sandbox anyway)")
        config = services.sandbox_config()
        if opts["timeout"]:
            from dataclasses import replace

            config = replace(config, call_timeout=opts["timeout"])
        status = sandbox_status(config)
        if status.warning() and not opts["json"]:
            self.stderr.write(self.style.WARNING(status.warning()))
        raises = [r.strip() for r in opts["raises"].split(",") if r.strip()]
        bundle = EnvironmentBundle(tools={opts["tool"]: {"code": code, "raises": raises}}, schema=schema, state=state,
                                   clock=opts["clock"], id_seed=opts["id_seed"])
        try:
            with Sandbox(bundle, config) as sandbox:
                if opts["tool"] in sandbox.load_errors:
                    raise CommandError(f"the code did not load: {sandbox.load_errors[opts['tool']]}")
                result = sandbox.call(opts["tool"], call_args)
                final_state, final_hash = sandbox.get_state()
                layers, missing = sandbox.layers, sandbox.missing_layers
        except SandboxError as exc:
            raise CommandError(str(exc)) from exc
        report = {"outcome": result["outcome"], "value": result.get("value"), "error_type": result.get("error_type"),
                  "error": result.get("error"), "diff": result.get("diff", {}), "state_hash": final_hash,
                  "stdout": result.get("stdout", ""), "duration_ms": result.get("duration_ms"),
                  "sandbox": {"mode": config.mode, "layers": layers, "missing": missing, "degraded": status.degraded}}
        if opts["json"]:
            self.stdout.write(json.dumps(report, sort_keys=True))
            return
        style = self.style.SUCCESS if result["outcome"] == "success" else (
            self.style.WARNING if result["outcome"] == "anticipated_rejection" else self.style.ERROR)
        self.stdout.write(style(f"outcome     {result['outcome']}"))
        if result["outcome"] == "success":
            self.stdout.write(f"value       {json.dumps(result.get('value'), sort_keys=True)}")
        else:
            self.stdout.write(f"error       {result.get('error_type')}: {result.get('error')}")
        diff = result.get("diff") or {}
        if not diff:
            self.stdout.write("diff        (no change)")
        for table, change in diff.items():
            for pk, row in change["added"].items():
                self.stdout.write(f"diff        + {table}[{pk}] {json.dumps(row, sort_keys=True)}")
            for pk in change["removed"]:
                self.stdout.write(f"diff        - {table}[{pk}]")
            for pk, cols in change["changed"].items():
                for col, (old, new) in cols.items():
                    self.stdout.write(f"diff        ~ {table}[{pk}].{col}: {json.dumps(old)} -> {json.dumps(new)}")
        if result.get("stdout"):
            self.stdout.write(f"stdout      {result['stdout']!r}")
        self.stdout.write(f"state hash  {final_hash}")
        self.stdout.write(f"sandbox     {config.mode}; layers: {', '.join(layers) or 'none'}"
                          + (f"; missing: {'; '.join(missing)}" if missing else ""))
