"""Sandbox worker: a long-lived process that hardens itself, then runs tool code on request.

Started by :mod:`environments.runtime.executor` as ``python -I worker.py CONFIG_JSON`` with a clean
environment. It talks JSON lines over two dedicated pipes (never stdin/stdout). Stdlib only, plus
pyseccomp; everything a tool may import is imported *before* hardening, because afterwards the
filesystem allow-list (and the dropped uid) make most of the disk unreadable.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import OrderedDict

# Pre-import what tools may use (later imports may be impossible once hardened).
import _strptime  # noqa: F401  - datetime.strptime imports it lazily
import collections  # noqa: F401
import dataclasses  # noqa: F401
import datetime  # noqa: F401
import decimal  # noqa: F401
import functools  # noqa: F401
import hashlib  # noqa: F401
import select
import itertools  # noqa: F401
import math  # noqa: F401
import re  # noqa: F401
import statistics  # noqa: F401
import string  # noqa: F401
import threading
import typing  # noqa: F401
import encodings.idna  # noqa: F401

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hardening  # noqa: E402
import statekit  # noqa: E402
import tracking  # noqa: E402

try:  # imported now, so that seccomp can be built after Landlock hides site-packages
    import pyseccomp  # noqa: F401
except Exception:  # noqa: BLE001 - reported as a missing layer by hardening
    pass

ALLOWED_IMPORTS = frozenset({
    "collections", "dataclasses", "datetime", "decimal", "functools", "hashlib", "itertools",
    "json", "math", "re", "statistics", "string", "typing",
})
STDOUT_CAP = 64 * 1024
_encode = json.JSONEncoder(allow_nan=False).encode  # one encoder: json.dumps(**kwargs) builds one per call
DEFAULT_RAISES = ("ValueError", "KeyError")

_real_import = __import__


def _restricted_import(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002
    if level != 0 or name.split(".")[0] not in ALLOWED_IMPORTS:
        raise ImportError(f"import of {name!r} is not allowed in tool code")
    return _real_import(name, globals, locals, fromlist, level)


_SAFE_BUILTIN_NAMES = (
    "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "format",
    "frozenset", "int", "isinstance", "issubclass", "len", "list", "map", "max", "min", "next",
    "pow", "print", "range", "repr", "reversed", "round", "set", "slice", "sorted", "str", "sum",
    "tuple", "zip", "iter", "callable", "hash", "chr", "ord", "object", "property", "staticmethod",
    "classmethod", "super", "type", "bytes", "bytearray", "Exception", "ValueError", "KeyError", "TypeError", "LookupError",
    "IndexError", "ZeroDivisionError", "RuntimeError", "ArithmeticError", "AttributeError",
    "StopIteration", "PermissionError", "OverflowError", "AssertionError", "NotImplemented",
    "__build_class__",
)
import builtins as _builtins  # noqa: E402

SAFE_BUILTINS = {n: getattr(_builtins, n) for n in _SAFE_BUILTIN_NAMES}
SAFE_BUILTINS["__import__"] = _restricted_import


class CappedWriter:
    """A stdout replacement that keeps the first ``STDOUT_CAP`` characters of a call's output."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.truncated = False

    def write(self, text: str) -> int:
        text = str(text)
        room = STDOUT_CAP - self.size
        if room <= 0:
            self.truncated = True
            return len(text)
        if len(text) > room:
            self.truncated = True
            text = text[:room]
        self.parts.append(text)
        self.size += len(text)
        return len(text)

    def flush(self) -> None:
        return None

    def value(self) -> str:
        return "".join(self.parts)


class Worker:
    def __init__(self, config: dict) -> None:
        self.config = config
        self.tools: dict[str, object] = {}
        self.raises: dict[str, frozenset[str]] = {}
        self.schema: dict = {"tables": {}}
        self.initial_text = "{}"
        self.state: dict = {}
        self.ctx = statekit.ToolContext("2026-01-01T09:00:00Z", 0)
        self.cpu_budget = float(config.get("limits", {}).get("cpu_seconds", 60))
        self.requests = 0
        self.tracker = tracking.Tracker()
        self.scalar_rows = False
        # Base states a session may resume from (a task's initial state), by the key the parent
        # names them with, least recently used first; never changed in place (resets copy them).
        self.bases: "OrderedDict[str, dict]" = OrderedDict()

    # -- operations ------------------------------------------------------------------------

    def op_ping(self, req: dict) -> dict:
        return {"ok": True, "pid": os.getpid(), "uid": os.getuid(), "requests": self.requests}

    def op_load(self, req: dict) -> dict:
        self.tools.clear()
        self.raises.clear()
        errors: dict[str, str] = {}
        for name, spec in (req.get("tools") or {}).items():
            try:
                namespace = {"__builtins__": SAFE_BUILTINS, "__name__": f"tool_{name}"}
                exec(compile(spec["code"], f"<tool {name}>", "exec"), namespace)  # noqa: S102 - sandboxed
                fn = namespace.get(name)
                if not callable(fn):
                    raise NameError(f"the code does not define a function named {name!r}")
                self.tools[name] = fn
                self.raises[name] = frozenset(DEFAULT_RAISES) | frozenset(spec.get("raises") or ())
            except BaseException as exc:  # noqa: BLE001 - reported per tool
                errors[name] = f"{type(exc).__name__}: {exc}"
        self.schema = req.get("schema") or {"tables": {}}
        self.initial_text = json.dumps(req.get("state") or {})
        self.initial_state = json.loads(self.initial_text)
        # Rows of scalars only (no json columns): snapshots and resets can copy rows shallowly,
        # which is ~10x cheaper than a JSON round trip.
        self.scalar_rows = not any(c.get("type") == "json" for t in self.schema.get("tables", {}).values()
                                   for c in t.get("columns", {}).values())
        self.ctx = statekit.ToolContext(req.get("clock") or "2026-01-01T09:00:00Z", int(req.get("id_seed") or 0))
        self.state = self._copy(self.initial_state)
        return {"loaded": sorted(self.tools), "errors": errors}

    def op_reset(self, req: dict) -> dict:
        self._reset(req.get("state"))
        if req.get("counter"):  # a session resumed here continues its id sequence
            self.ctx.counter = int(req["counter"])
        return {"ok": True}

    def op_set_ids(self, req: dict) -> dict:
        self.ctx.counter = int(req.get("counter") or 0)
        return {"ok": True}

    def op_get_state(self, req: dict) -> dict:
        return {"state": self.state, "state_hash": statekit.state_hash(self.state)}

    def op_call(self, req: dict) -> dict:
        start = req.get("start_from")
        if isinstance(start, dict) and "base" in start:  # a kept base plus the session's diffs since
            if not self._resume(start):
                return {"unknown_base": start["base"]}
        elif isinstance(start, dict):  # a reset and the call in one request
            self.op_reset(start)
        return self.execute(req.get("tool"), req.get("args"), diffs=req.get("diffs", True))

    def _resume(self, start: dict) -> bool:
        """Load base + diffs (the base sent along, or one kept from an earlier request); False when
        the base is neither."""
        key = str(start["base"])
        if isinstance(start.get("state"), dict):
            self.bases[key] = start["state"]
            while len(self.bases) > statekit.RESUME_BASES_KEPT:
                self.bases.popitem(last=False)
        base = self.bases.get(key)
        if base is None:
            return False
        self.bases.move_to_end(key)
        for diff in start.get("diffs") or ():
            base = statekit.apply_diff_shared(base, diff)
        self._reset(base)
        self.ctx.counter = int(start.get("counter") or 0)
        return True

    def op_probe(self, req: dict) -> dict:
        if not self.config.get("probes"):
            return {"error": "probes are disabled in this worker"}
        namespace: dict = {}
        exec(compile(req["code"], "<probe>", "exec"), namespace)  # noqa: S102 - test builds only
        return {"result": namespace.get("result")}

    def _copy(self, state: dict) -> dict:
        if self.scalar_rows:
            self.tracker.clear()
            return tracking.wrap(state, self.tracker)
        return json.loads(json.dumps(state))

    def _reset(self, state: dict | None, patch: dict | None = None) -> None:
        base = self.initial_state if state is None else state
        if patch:
            base = statekit.apply_diff(base, patch)
        self.state = self._copy(base) if isinstance(base, dict) else base
        self.ctx.reset()

    # -- streaming batches -----------------------------------------------------------------

    def op_run_sequence(self, req: dict, send) -> dict:
        if req.get("reset", True):
            self._reset(req.get("state"), req.get("patch"))
        outputs: list = []
        diffs = req.get("diffs", True)
        stop = req.get("stop_on_failure", True)
        broken = False
        for index, call in enumerate(req.get("calls") or []):
            if broken:
                result = {"outcome": "skipped", "error_type": "Skipped",
                          "error": "an earlier step failed", "diff": {}}
            else:
                try:
                    args = statekit.resolve_refs(call.get("args") or {}, outputs)
                except KeyError as exc:
                    result = {"outcome": "unexpected_failure", "error_type": "BadReference",
                              "error": str(exc.args[0] if exc.args else exc), "diff": {}}
                else:
                    result = self.execute(call.get("tool"), args, diffs=diffs)
                    result["args"] = args
                if result["outcome"] != "success" and stop:
                    broken = True
            outputs.append(result.get("value"))
            if not req.get("values", True):
                result = {k: v for k, v in result.items() if k != "value"}
            send({"id": req.get("id"), "step": index, "result": result})
            if result.get("recycle"):
                return {"done": True, "recycle": True}
        final = {"done": True, "state_hash": statekit.state_hash(self.state) if req.get("hash", True) else None}
        if req.get("return_state"):
            final["state"] = self.state
        return final

    def op_run_cases(self, req: dict, send) -> dict:
        for index, case in enumerate(req.get("cases") or []):
            self._reset(case.get("state"), case.get("patch"))
            result = self.execute(case.get("tool"), case.get("args"), diffs=True)
            result["state_hash"] = statekit.state_hash(self.state)
            send({"id": req.get("id"), "step": index, "result": result})
            if result.get("recycle"):
                return {"done": True, "recycle": True}
        return {"done": True}

    # -- one tool call ---------------------------------------------------------------------

    def execute(self, name, args, diffs: bool = True) -> dict:
        started = time.perf_counter()
        fn = self.tools.get(name) if isinstance(name, str) else None
        if fn is None:
            return {"outcome": "unexpected_failure", "error_type": "UnknownTool",
                    "error": f"unknown tool {name!r}", "diff": {}, "duration_ms": 0.0}
        if not isinstance(args, dict):
            return {"outcome": "anticipated_rejection", "error_type": "InvalidArguments",
                    "error": "arguments must be a JSON object", "diff": {}, "duration_ms": 0.0}
        tracked = self.scalar_rows and isinstance(self.state, tracking.TrackedState)
        before = None if tracked else json.loads(json.dumps(self.state))
        if tracked:
            self.tracker.clear()
        out = CappedWriter()
        saved_stdout = sys.stdout
        sys.stdout = out
        result: dict = {}
        try:
            value = fn(self.state, self.ctx, **args)
        except BaseException as exc:  # noqa: BLE001 - classified below
            kind = type(exc).__name__
            message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
            if isinstance(exc, TypeError) and exc.__traceback__ is not None and exc.__traceback__.tb_next is None:
                # Raised by the call itself (unknown or missing keyword): the arguments are invalid.
                result = {"outcome": "anticipated_rejection", "error_type": "InvalidArguments",
                          "error": f"invalid arguments: {message}"}
            elif isinstance(exc, (MemoryError, RecursionError, SystemExit, KeyboardInterrupt)):
                result = {"outcome": "unexpected_failure", "error_type": kind,
                          "error": message or kind, "recycle": True}
            elif kind in self.raises.get(name, DEFAULT_RAISES):
                result = {"outcome": "anticipated_rejection", "error_type": kind, "error": message}
            else:
                result = {"outcome": "unexpected_failure", "error_type": kind, "error": message}
        else:
            try:
                _encode(value)
                result = {"outcome": "success", "value": value}
            except (TypeError, ValueError) as exc:
                result = {"outcome": "unexpected_failure", "error_type": "BadReturnValue",
                          "error": f"return value is not JSON-serializable: {exc}"}
        finally:
            sys.stdout = saved_stdout
        if threading.active_count() > 1:
            result = {"outcome": "unexpected_failure", "error_type": "ThreadLeak",
                      "error": "the tool left a thread running", "recycle": True}
        diff: dict = {}
        if tracked:
            touched = bool(self.tracker.rows or self.tracker.tables)
            if touched and result["outcome"] != "success":
                tracking.rollback(self.state, self.tracker)  # a failed call leaves the state as it was
            elif touched:
                try:
                    diff = tracking.changes(self.state, self.tracker)
                    problems = (statekit.validate_after_write(self.schema, self.state, diff)
                                if diff and self.schema.get("tables") else [])
                except Exception as exc:  # noqa: BLE001 - a tool put something odd in the state
                    problems = [f"{type(exc).__name__}: {exc}"]
                if problems:
                    tracking.rollback(self.state, self.tracker)
                    diff = {}
                    result = {"outcome": "unexpected_failure", "error_type": "InconsistentState",
                              "error": "state invalid after write: " + "; ".join(problems[:5])}
                else:
                    tracking.commit(self.state, self.tracker)
        elif self.state != before:
            if result["outcome"] != "success" or not isinstance(self.state, dict):
                self.state = before  # a failed call leaves the state as it was
            else:
                try:
                    diff = statekit.diff_states(before, self.state)
                    problems = (statekit.validate_after_write(self.schema, self.state, diff)
                                if self.schema.get("tables") else [])
                except Exception as exc:  # noqa: BLE001 - a tool put something odd in the state
                    problems = [f"{type(exc).__name__}: {exc}"]
                if problems:
                    self.state = before
                    diff = {}
                    result = {"outcome": "unexpected_failure", "error_type": "InconsistentState",
                              "error": "state invalid after write: " + "; ".join(problems[:5])}
        result["diff"] = diff if diffs else {}
        result["changed"] = bool(diff)
        text = out.value()
        if text:
            result["stdout"] = text
        if out.truncated:
            result["stdout_truncated"] = True
        result["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        result["ids_used"] = self.ctx.counter
        if not self.requests & 63 and time.process_time() > 0.8 * self.cpu_budget:
            result["recycle"] = True  # checked every 64 requests: reading the CPU clock is a syscall
        return result

    # -- main loop -------------------------------------------------------------------------

    def serve(self, in_fd: int, out_fd: int) -> None:
        write = os.write

        def send(message: dict) -> None:
            try:
                line = _encode(message)
            except (TypeError, ValueError) as exc:
                line = json.dumps({"id": message.get("id"), "error": f"unencodable response: {exc}"})
            data = memoryview(line.encode("utf-8") + b"\n")
            while data:  # one write syscall per message in practice (unbuffered)
                data = data[write(out_fd, data):]

        for raw in read_lines(in_fd, float(self.config.get("spin_seconds", 0.0002))):
            self.requests += 1
            try:
                req = json.loads(raw)
                op = req.get("op")
                if op in ("run_sequence", "run_cases"):
                    response = getattr(self, f"op_{op}")(req, send)
                else:
                    handler = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
                    response = handler(req) if handler else {"error": f"unknown op {op!r}"}
            except BaseException as exc:  # noqa: BLE001 - the worker must answer every request
                response = {"error": f"{type(exc).__name__}: {exc}"}
            response["id"] = req.get("id") if isinstance(req, dict) else None
            send(response)


def read_lines(fd: int, spin: float):
    """Yield request lines. Spin briefly before blocking: a blocked read's wake-up costs ~100 µs
    on virtual machines, a short spin after each message costs almost nothing."""
    os.set_blocking(fd, False)
    buffer = bytearray()
    perf = time.perf_counter
    while True:
        newline = buffer.find(b"\n")
        if newline >= 0:
            line = bytes(buffer[:newline])
            del buffer[: newline + 1]
            yield line
            continue
        end = perf() + spin
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
                break
            except BlockingIOError:
                if perf() > end:
                    select.select([fd], [], [])
        if not chunk:
            return
        buffer += chunk


def main() -> None:
    config = json.loads(sys.argv[1])
    if config.get("probes"):
        import socket  # noqa: F401 - probes must reach the kernel, not fail on an import
    started = time.perf_counter()
    try:
        applied, missing, error = hardening.harden(
            mode=config.get("mode", "auto"), uid=int(config["uid"]), scratch=config["scratch"],
            limits=config.get("limits") or {}, skip=frozenset(config.get("skip_layers") or ()),
            simulate_abi=config.get("simulate_landlock_abi"),
        )
    except BaseException as exc:  # noqa: BLE001 - reported; the parent refuses the worker
        applied, missing, error = [], [], f"hardening crashed: {type(exc).__name__}: {exc}"
    if config.get("fake_harden_error"):
        error = str(config["fake_harden_error"])
    ready = {"ready": True, "harden_error": error, "layers": applied, "missing": missing,
             "pid": os.getpid(), "uid": os.getuid(), "harden_ms": round((time.perf_counter() - started) * 1000, 2)}
    os.write(config["out_fd"], json.dumps(ready).encode("utf-8") + b"\n")
    if error:
        return
    Worker(config).serve(config["in_fd"], config["out_fd"])


if __name__ == "__main__":
    main()
