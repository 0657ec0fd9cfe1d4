"""Parent side of the sandbox: spawns hardened workers, talks JSON lines, enforces deadlines.

One :class:`Sandbox` is one worker process serving one environment version (tool code, schema,
initial state). A hang, crash, oversized response or protocol error costs the call it happened
in an ``unexpected_failure``; the worker is killed (whole process group), respawned, reloaded,
and the session's calls since the last reset are replayed, so nothing else is affected.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from . import statekit

logger = logging.getLogger(__name__)

WORKER_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")
OUTCOMES = ("success", "anticipated_rejection", "unexpected_failure")
_encode = json.JSONEncoder(allow_nan=False).encode  # reused: json.dumps(**kwargs) builds one per call


class SandboxError(Exception):
    """Infrastructure failure: the sandbox could not be started or refused to run."""


class SandboxUnavailable(SandboxError):
    """Strict mode and a hardening layer (or the self-test) failed: fail closed."""


class _BwrapFailed(Exception):
    pass


class _WorkerLost(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class SandboxConfig:
    mode: str = "auto"  # "auto": use every layer available, warn when degraded; "strict": fail closed
    call_timeout: float = 2.0
    load_timeout: float = 10.0
    start_timeout: float = 10.0
    limits: dict[str, Any] = field(default_factory=dict)
    max_requests: int = 50_000
    response_cap: int = 1 << 20
    state_response_cap: int = 64 << 20
    uid_base: int = 20_000
    spin_seconds: float = 0.0002  # busy-poll before blocking on a pipe (see worker.read_lines)
    python: str = sys.executable
    probes: bool = False
    skip_layers: tuple[str, ...] = ()
    fake_harden_error: str | None = None
    simulate_landlock_abi: int | None = None  # tests of the fail-closed path on an "older kernel"
    bwrap: str = "auto"  # "auto": wrap workers in bubblewrap when it is installed and works; "off"
    selftest: bool = True

    @classmethod
    def from_env(cls, **overrides: Any) -> "SandboxConfig":
        env = os.environ
        values: dict[str, Any] = {
            "mode": env.get("SCALEENV_SANDBOX", "auto"),
            "call_timeout": float(env.get("SCALEENV_SANDBOX_CALL_TIMEOUT", "2.0")),
            "bwrap": env.get("SCALEENV_SANDBOX_BWRAP", "auto"),
        }
        if values["mode"] not in ("auto", "strict"):
            raise SandboxError(f"SCALEENV_SANDBOX must be 'auto' or 'strict', not {values['mode']!r}")
        values.update(overrides)
        return cls(**values)


@dataclass
class EnvironmentBundle:
    """Everything one worker loads: tool code, schema, initial state, clock and id seed."""

    tools: dict[str, dict[str, Any]]  # name -> {"code": str, "raises": [str]}
    schema: dict[str, Any]
    state: dict[str, Any]
    clock: str = "2026-01-15T09:00:00Z"
    id_seed: int = 0

    def version_hash(self) -> str:
        # Hashing the code and the fixture takes milliseconds; a bundle is not changed once made.
        cached = self.__dict__.get("_version_hash")
        if cached is None:
            payload = statekit.canonical_json(
                {"tools": self.tools, "schema": self.schema, "state": self.state, "clock": self.clock,
                 "id_seed": self.id_seed})
            cached = self.__dict__["_version_hash"] = hashlib.sha256(payload.encode()).hexdigest()
        return cached

    def load_request(self, tools: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        return {"op": "load", "tools": self.tools if tools is None else tools, "schema": self.schema,
                "state": self.state, "clock": self.clock, "id_seed": self.id_seed}


def failure(kind: str, message: str) -> dict[str, Any]:
    return {"outcome": "unexpected_failure", "error_type": kind, "error": message, "diff": {}, "changed": False}


_bwrap_broken: dict[str, str] = {}  # bwrap path -> why it could not start a worker here


def _bwrap_prefix(config: SandboxConfig, scratch: str) -> list[str]:
    """bubblewrap arguments: new ipc/pid/net/uts namespaces, only the interpreter, the project's
    runtime directory and the scratch directory visible (tier 1+ of the sandbox notes)."""
    bwrap = shutil.which("bwrap")
    if config.bwrap == "off" or not bwrap or bwrap in _bwrap_broken:
        return []
    args = [bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--ro-bind", "/usr", "/usr"]
    if os.getuid() != 0:
        args.append("--unshare-user")  # as root a user namespace would break the worker's uid drop
    for link in ("/lib", "/lib64", "/bin", "/sbin"):
        if os.path.islink(link):
            args += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            args += ["--ro-bind", link, link]
    # Fresh /proc, /dev and /tmp first: binds below may live under /tmp and must not be hidden.
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    # The dynamic linker's cache: ctypes finds libseccomp through it (nothing else of /etc is shown).
    args += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    python_dirs = {sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(config.python)),
                   os.path.dirname(WORKER_PATH)}
    for path in sorted(p for p in python_dirs if p and not p.startswith("/usr")):
        args += ["--ro-bind", path, path]
    args += ["--bind", scratch, scratch, "--chdir", scratch, "--clearenv", "--setenv", "PATH", "/usr/bin:/bin"]
    return args


_uid_counter = itertools.count()
_uid_lock = threading.Lock()


def _next_uid(base: int) -> int:
    # A unique uid per worker slot; pid-spread so that workers of different Celery children differ.
    with _uid_lock:
        n = next(_uid_counter)
    return base + ((os.getpid() * 16 + n) % 40_000)


@dataclass(frozen=True)
class Resume:
    """A session's state as a base the worker may keep between requests (a task's initial state,
    named by ``key``, which must name that content alone) plus the diffs of the session's successful
    calls since, and the ids its episode used. After the first time, the base is not sent again."""

    key: str
    base: dict[str, Any]
    diffs: tuple[dict[str, Any], ...]
    ids_used: int

    def state(self) -> dict[str, Any]:
        state = self.base
        for diff in self.diffs:
            state = statekit.apply_diff_shared(state, diff)
        return state


class _Worker:
    """One live worker process and its pipes."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.bases: OrderedDict[str, None] = OrderedDict()  # the bases this worker keeps (a mirror)
        self.scratch = tempfile.mkdtemp(prefix="scaleenv-sbx-")
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        self.uid = _next_uid(config.uid_base)
        worker_config = {
            "in_fd": req_r, "out_fd": resp_w, "uid": self.uid, "scratch": self.scratch,
            "mode": config.mode, "limits": config.limits, "probes": config.probes,
            "skip_layers": list(config.skip_layers), "fake_harden_error": config.fake_harden_error,
            "spin_seconds": config.spin_seconds, "simulate_landlock_abi": config.simulate_landlock_abi,
        }
        started = time.perf_counter()
        wrapper = _bwrap_prefix(config, self.scratch)
        self.wrapped = bool(wrapper)
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argv, clean environment
                [*wrapper, config.python, "-I", WORKER_PATH, json.dumps(worker_config)],
                pass_fds=(req_r, resp_w), env={"PATH": "/usr/bin:/bin"}, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                close_fds=True, cwd=self.scratch,
            )
        except OSError as exc:
            for fd in (req_r, req_w, resp_r, resp_w):
                os.close(fd)
            raise SandboxError(f"cannot start a sandbox worker: {exc}") from exc
        os.close(req_r)
        os.close(resp_w)
        self.req_fd = req_w
        self.resp_fd = resp_r
        os.set_blocking(resp_r, False)
        self.buffer = bytearray()
        self.requests = 0
        self.closed = False
        try:
            self.ready = self.read(time.monotonic() + config.start_timeout, 1 << 16)
        except _WorkerLost as exc:
            self.kill()
            if self.wrapped:
                # bubblewrap is optional: remember that it does not work on this host (a container
                # without namespaces, say) and let the caller start an unwrapped worker.
                _bwrap_broken[wrapper[0]] = str(exc)
                logger.warning("bubblewrap could not start a sandbox worker (%s); continuing without it", exc)
                raise _BwrapFailed(str(exc)) from exc
            raise SandboxError(f"sandbox worker did not start: {exc}") from exc
        self.startup_ms = (time.perf_counter() - started) * 1000
        if not self.ready.get("ready"):
            self.kill()
            raise SandboxError(f"sandbox worker sent an unexpected greeting: {self.ready!r}")
        if self.ready.get("harden_error") is not None:
            error = self.ready["harden_error"]
            self.kill()
            raise SandboxUnavailable(f"sandbox worker refused: {error}")

    @property
    def layers(self) -> list[str]:
        return list(self.ready.get("layers") or []) + (["bwrap"] if self.wrapped else [])

    @property
    def missing(self) -> list[str]:
        return list(self.ready.get("missing") or [])

    def send(self, message: dict[str, Any]) -> None:
        data = _encode(message).encode("utf-8") + b"\n"
        view = memoryview(data)
        try:
            while view:
                written = os.write(self.req_fd, view)
                view = view[written:]
        except (BrokenPipeError, OSError) as exc:
            raise _WorkerLost("crash", f"worker pipe closed: {exc}") from exc
        self.requests += 1

    def read(self, deadline: float, cap: int) -> dict[str, Any]:
        start = 0
        while True:
            newline = self.buffer.find(b"\n", start)
            if newline >= 0:
                break
            start = len(self.buffer)
            if len(self.buffer) > cap:
                raise _WorkerLost("oversized", f"response exceeds {cap} bytes")
            chunk = self._read_chunk(deadline)
            if not chunk:
                code = self.proc.poll()
                if code is None:
                    try:
                        code = self.proc.wait(timeout=1.0)
                    except subprocess.TimeoutExpired:
                        code = None
                raise _WorkerLost("crash", f"worker exited ({_describe_exit(code)})")
            self.buffer += chunk
        line = bytes(self.buffer[:newline])
        del self.buffer[: newline + 1]
        if len(line) > cap:
            raise _WorkerLost("oversized", f"response of {len(line)} bytes exceeds {cap} bytes")
        try:
            message = json.loads(line)
        except ValueError as exc:
            raise _WorkerLost("protocol", f"invalid JSON from worker: {exc}") from exc
        if not isinstance(message, dict):
            raise _WorkerLost("protocol", "worker response is not an object")
        return message

    def _read_chunk(self, deadline: float) -> bytes:
        spin_end = time.perf_counter() + self.config.spin_seconds
        while True:
            try:
                return os.read(self.resp_fd, 1 << 20)
            except BlockingIOError:
                if time.perf_counter() < spin_end:
                    continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _WorkerLost("timeout", "deadline exceeded")
            ready, _, _ = select.select([self.resp_fd], [], [], remaining)
            if not ready:
                raise _WorkerLost("timeout", "deadline exceeded")

    def kill(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            logger.warning("sandbox worker %s did not die", self.proc.pid)
        for fd in (self.req_fd, self.resp_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.scratch, ignore_errors=True)


def _new_worker(config: SandboxConfig) -> _Worker:
    try:
        return _Worker(config)
    except _BwrapFailed:
        return _Worker(config)  # the failure is remembered, so this one starts unwrapped


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "unknown status"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Sandbox:
    """A sandboxed environment: one worker, one environment version, a per-call deadline."""

    def __init__(self, bundle: EnvironmentBundle, config: SandboxConfig | None = None) -> None:
        self.bundle = bundle
        self.config = config or SandboxConfig.from_env()
        self.version = bundle.version_hash()
        self._ids = itertools.count(1)
        # The session since the last reset: its base state, the successful calls, and how many
        # ids the context had handed out; enough to rebuild the state on a replacement worker.
        self._journal_state: dict[str, Any] | Resume | None = None
        self._journal: list[tuple[str, Any]] = []
        self._ids_used = 0
        self.load_errors: dict[str, str] = {}
        self.respawns = 0
        self.holder: Any = None  # whose state the worker holds, set by its leaseholder (SandboxPool.lease)
        if self.config.selftest and not self.config.probes:
            from .probes import sandbox_status

            status = sandbox_status(self.config)
            if self.config.mode == "strict" and (status.error or status.leaks):
                raise SandboxUnavailable(status.warning() or "sandbox self-test failed")
        self._worker = self._spawn()

    # -- lifecycle -------------------------------------------------------------------------

    def _spawn(self) -> _Worker:
        worker = _new_worker(self.config)
        try:
            self.load_errors = self._load(worker)
        except _WorkerLost:
            worker.kill()
            worker, self.load_errors = self._load_one_by_one()
        return worker

    def _load(self, worker: _Worker) -> dict[str, str]:
        worker.send({**self.bundle.load_request(), "id": 0})
        reply = worker.read(time.monotonic() + self.config.load_timeout, self.config.state_response_cap)
        if "error" in reply:
            raise SandboxError(f"worker could not load the environment: {reply['error']}")
        return dict(reply.get("errors") or {})

    def _load_one_by_one(self) -> tuple[_Worker, dict[str, str]]:
        """A load timed out: find the tool whose module-level code hangs, and leave it out."""
        worker = _new_worker(self.config)
        good: dict[str, dict[str, Any]] = {}
        errors: dict[str, str] = {}
        for name, spec in self.bundle.tools.items():
            try:
                worker.send({**self.bundle.load_request({**good, name: spec}), "id": 0})
                reply = worker.read(time.monotonic() + self.config.call_timeout, self.config.state_response_cap)
                errors.update(reply.get("errors") or {})
                if name not in (reply.get("errors") or {}):
                    good[name] = spec
            except _WorkerLost as exc:
                errors[name] = f"loading the tool failed: {exc}"
                worker.kill()
                worker = _new_worker(self.config)
        worker.send({**self.bundle.load_request(good), "id": 0})
        worker.read(time.monotonic() + self.config.load_timeout, self.config.state_response_cap)
        return worker, errors

    def _recover(self) -> None:
        """Replace a lost worker and bring it back to the session's state."""
        self._worker.kill()
        self.respawns += 1
        self._worker = self._spawn()
        try:
            if self._journal_state is not None or self._journal:
                calls = [{"tool": t, "args": a} for t, a in self._journal]
                base = self._journal_state
                list(self._stream({"op": "run_sequence", "reset": True,
                                   "state": base.state() if isinstance(base, Resume) else base,
                                   "calls": calls, "stop_on_failure": False, "diffs": False, "values": False,
                                   "hash": False}, len(calls)))
            if self._ids_used:
                self._worker.send({"op": "set_ids", "counter": self._ids_used, "id": 0})
                self._worker.read(time.monotonic() + self.config.call_timeout, self.config.response_cap)
        except _WorkerLost as exc:
            # The replay itself failed: start the session over from its base state.
            logger.warning("could not rebuild the session on a new worker (%s); state reset", exc)
            self._worker.kill()
            self._worker = self._spawn()
            self._journal, self._ids_used = [], 0

    def _track(self, tool: str, args: Any, result: dict[str, Any]) -> None:
        if isinstance(result.get("ids_used"), int):
            self._ids_used = result["ids_used"]
        if result.get("outcome") == "success" and result.get("changed"):
            self._journal.append((tool, args))

    def _maybe_recycle(self) -> None:
        if self._worker.requests >= self.config.max_requests:
            self._recover()

    def close(self) -> None:
        self._worker.kill()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def layers(self) -> list[str]:
        return self._worker.layers

    @property
    def missing_layers(self) -> list[str]:
        return self._worker.missing

    @property
    def worker_pid(self) -> int:
        return self._worker.proc.pid

    @property
    def startup_ms(self) -> float:
        return self._worker.startup_ms

    # -- requests --------------------------------------------------------------------------

    def _request(self, message: dict[str, Any], timeout: float | None = None, cap: int | None = None) -> dict[str, Any]:
        self._maybe_recycle()
        message["id"] = next(self._ids)
        self._worker.send(message)
        reply = self._worker.read(time.monotonic() + (timeout or self.config.call_timeout),
                                  cap or self.config.response_cap)
        if reply.get("recycle"):
            self._recover()
        return reply

    def ping(self) -> dict[str, Any]:
        return self._request({"op": "ping"})

    def reset(self, state: dict[str, Any] | None = None, ids_used: int = 0) -> None:
        """Load ``state`` (the initial one when None); ``ids_used`` continues an episode's id
        sequence, as :meth:`set_ids_used` would, in the same round trip."""
        self.holder = None
        self._journal_state = state
        self._journal, self._ids_used = [], 0
        try:
            self._request({"op": "reset", "state": state, "counter": int(ids_used)}, timeout=self.config.load_timeout,
                          cap=self.config.state_response_cap)
        except _WorkerLost:
            self._recover()
            if ids_used:
                self.set_ids_used(ids_used)
            return
        self._ids_used = int(ids_used)

    def set_ids_used(self, count: int) -> None:
        """Continue an episode's id sequence (a session resumed on this worker)."""
        self._request({"op": "set_ids", "counter": int(count)})
        self._ids_used = int(count)

    @property
    def ids_used(self) -> int:
        return self._ids_used

    def get_state(self) -> tuple[dict[str, Any], str]:
        try:
            reply = self._request({"op": "get_state"}, timeout=self.config.load_timeout,
                                  cap=self.config.state_response_cap)
        except _WorkerLost as exc:
            self._recover()
            raise SandboxError(f"could not read the state: {exc}") from exc
        return reply["state"], reply["state_hash"]

    def call(self, tool: str, args: Any, *, timeout: float | None = None,
             start_from: tuple[dict[str, Any], int] | Resume | None = None) -> dict[str, Any]:
        """Run one tool call against the current state; the state persists between calls.
        ``start_from`` first loads a session's state, as :meth:`reset` would, in the same round
        trip (a session resumed on this worker): a state and the ids its episode used, or a
        :class:`Resume`, whose base the worker keeps (sent only when it does not hold it yet)."""
        message: dict[str, Any] = {"op": "call", "tool": tool, "args": args}
        if start_from is not None:
            self.holder = None
            if isinstance(start_from, Resume):
                self._journal_state, self._journal, self._ids_used = start_from, [], start_from.ids_used
                message["start_from"] = self._resume_message(start_from)
            else:
                state, ids_used = start_from
                self._journal_state, self._journal, self._ids_used = state, [], int(ids_used)
                message["start_from"] = {"state": state, "counter": int(ids_used)}
        try:
            result = self._request(message, timeout=timeout)
            if "unknown_base" in result and isinstance(start_from, Resume):  # the mirror was wrong: send it
                self._worker.bases.pop(start_from.key, None)
                message["start_from"] = self._resume_message(start_from)
                result = self._request(message, timeout=timeout)
        except _WorkerLost as exc:
            self._recover()
            return failure(_lost_kind(exc), _lost_message(exc, timeout or self.config.call_timeout))
        self._track(tool, args, result)
        return _clean_result(result)

    def _resume_message(self, resume: Resume) -> dict[str, Any]:
        held = self._worker.bases
        message = {"base": resume.key, "diffs": list(resume.diffs), "counter": int(resume.ids_used)}
        if resume.key in held:
            held.move_to_end(resume.key)
        else:
            message["state"] = resume.base
            held[resume.key] = None
            while len(held) > statekit.RESUME_BASES_KEPT:
                held.popitem(last=False)
        return message

    def call_pipelined(self, calls: list[tuple[str, Any]], window: int = 64) -> list[dict[str, Any]]:
        """Send calls without waiting for each answer (bounded window, so the pipes never deadlock)."""
        results: list[dict[str, Any]] = []
        pending = 0
        deadline_per_call = self.config.call_timeout
        iterator = iter(calls)
        try:
            sent: list[tuple[str, Any]] = []

            def receive() -> None:
                raw = self._worker.read(time.monotonic() + deadline_per_call, self.config.response_cap)
                tool_name, tool_args = sent[len(results)]
                self._track(tool_name, tool_args, raw)
                results.append(_clean_result(raw))

            for tool, args in iterator:
                self._worker.send({"op": "call", "tool": tool, "args": args, "id": 0})
                sent.append((tool, args))
                pending += 1
                if pending >= window:
                    receive()
                    pending -= 1
            while pending:
                receive()
                pending -= 1
        except _WorkerLost as exc:
            self._recover()
            results.append(failure(_lost_kind(exc), _lost_message(exc, deadline_per_call)))
            results.extend(failure("Skipped", "an earlier pipelined call failed") for _ in range(pending - 1))
            results.extend(failure("Skipped", "an earlier pipelined call failed") for _ in iterator)
        return results

    def _stream(self, message: dict[str, Any], count: int) -> Iterator[tuple[int, dict[str, Any]]]:
        """Send a batch request and yield ``(step, result)`` as the worker streams them."""
        message = {**message, "id": next(self._ids)}
        self._worker.send(message)
        for _ in range(count):
            reply = self._worker.read(time.monotonic() + self.config.call_timeout, self.config.response_cap)
            if "step" not in reply:
                self._final = reply
                return
            yield reply["step"], reply["result"]
        self._final = self._worker.read(time.monotonic() + self.config.load_timeout, self.config.state_response_cap)

    def run_sequence(self, calls: list[dict[str, Any]], *, state: dict[str, Any] | None = None,
                     patch: dict[str, Any] | None = None, reset: bool = True, stop_on_failure: bool = True,
                     diffs: bool = True, return_state: bool = False, state_hash: bool = True,
                     values: bool = True) -> dict[str, Any]:
        """Reset (to ``state``, or the initial state plus ``patch``), run calls in order, return
        results and the state hash.

        Arguments may hold ``{"$ref": [step, "path"]}``: the value at ``path`` in an earlier output.
        """
        self._maybe_recycle()
        results: list[dict[str, Any]] = []
        self._final: dict[str, Any] = {}
        request = {"op": "run_sequence", "calls": calls, "reset": reset, "state": state, "patch": patch,
                   "stop_on_failure": stop_on_failure, "diffs": diffs, "return_state": return_state,
                   "hash": state_hash, "values": values}
        raw_results: list[dict[str, Any]] = []
        try:
            for _step, result in self._stream(request, len(calls)):
                raw_results.append(result)
                results.append(_clean_result(result))
        except _WorkerLost as exc:
            self._recover()
            results.append(failure(_lost_kind(exc), _lost_message(exc, self.config.call_timeout)))
            results.extend(failure("Skipped", "an earlier step failed") for _ in range(len(calls) - len(results)))
            return {"results": results, "state_hash": None, "state": None, "lost": True}
        final = self._final
        if reset:
            self._journal_state = state if not patch else statekit.apply_diff(
                self.bundle.state if state is None else state, patch)
            self._journal, self._ids_used = [], 0
        for call, result in zip(calls, raw_results):
            self._track(call.get("tool"), result.get("args", call.get("args")), result)
        if final.get("recycle"):
            self._recover()
        return {"results": results, "state_hash": final.get("state_hash"), "state": final.get("state"),
                "lost": False}

    def run_cases(self, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run independent cases ``{"state" or "patch", "tool", "args"}``, each on its own state
        (a patch applies to the loaded initial state).

        A case that hangs or crashes the worker costs only that case: the worker is replaced and
        the remaining cases run on the new one.
        """
        results: list[dict[str, Any]] = []
        remaining = list(cases)
        while remaining:
            self._maybe_recycle()
            self._final = {}
            done_here = 0
            try:
                for _step, result in self._stream({"op": "run_cases", "cases": remaining}, len(remaining)):
                    results.append(_clean_result(result))
                    done_here += 1
                remaining = remaining[done_here:]
                if self._final.get("recycle"):
                    self._recover()
            except _WorkerLost as exc:
                self._recover()
                results.append(failure(_lost_kind(exc), _lost_message(exc, self.config.call_timeout)))
                remaining = remaining[done_here + 1:]
        self._journal_state, self._journal, self._ids_used = None, [], 0
        return results

    def probe(self, code: str, timeout: float | None = None) -> dict[str, Any]:
        """Run arbitrary code in the worker (test builds only: needs ``probes=True``)."""
        try:
            return self._request({"op": "probe", "code": code}, timeout=timeout)
        except _WorkerLost as exc:
            self._recover()
            return {"lost": _lost_kind(exc), "error": str(exc)}


def _lost_kind(exc: _WorkerLost) -> str:
    return {"timeout": "Timeout", "crash": "WorkerCrashed", "oversized": "OversizedResponse",
            "protocol": "ProtocolError"}.get(exc.kind, "WorkerLost")


def _lost_message(exc: _WorkerLost, timeout: float) -> str:
    if exc.kind == "timeout":
        return f"the tool did not finish within {timeout:g}s; the worker was killed and replaced"
    return f"{exc}; the worker was replaced"


def _clean_result(result: dict[str, Any]) -> dict[str, Any]:
    """Treat worker output as untrusted: keep known fields with the expected types."""
    outcome = result.get("outcome")
    if outcome not in OUTCOMES and outcome != "skipped":
        return failure("ProtocolError", f"worker returned an unknown outcome {outcome!r}")
    clean: dict[str, Any] = {"outcome": outcome, "diff": result.get("diff") if isinstance(result.get("diff"), dict) else {},
                             "changed": bool(result.get("changed"))}
    if outcome == "success":
        clean["value"] = result.get("value")
    else:
        clean["error_type"] = str(result.get("error_type") or "Error")[:200]
        clean["error"] = str(result.get("error") or "")[:4000]
    for key in ("stdout", "stdout_truncated", "duration_ms", "state_hash", "args"):
        if key in result:
            clean[key] = result[key]
    return clean


class SandboxPool:
    """Sandboxes keyed by environment version (one worker never mixes domains), for one process.

    ``lease(bundle)`` hands a sandbox to one caller at a time, so threads never share a worker's
    state; several sandboxes of the same environment exist when several threads need one at once.
    At most ``size`` idle sandboxes are kept, the least recently used closed first. ``get(bundle)``
    is the single-threaded shortcut (a job process) that keeps one sandbox per environment.
    """

    def __init__(self, config: SandboxConfig | None = None, size: int = 3) -> None:
        self.config = config or SandboxConfig.from_env()
        self.size = size
        self._items: "OrderedDict[str, Sandbox]" = OrderedDict()
        self._idle: "OrderedDict[str, list[Sandbox]]" = OrderedDict()
        self._lock = threading.Lock()

    def get(self, bundle: EnvironmentBundle) -> Sandbox:
        key = bundle.version_hash()
        sandbox = self._items.pop(key, None)
        if sandbox is None:
            sandbox = Sandbox(bundle, self.config)
        self._items[key] = sandbox
        while len(self._items) > self.size:
            _, old = self._items.popitem(last=False)
            old.close()
        return sandbox

    @contextmanager
    def lease(self, bundle: EnvironmentBundle, holder: Any = None) -> Iterator[Sandbox]:
        """An idle sandbox of ``bundle`` (a new one if none is idle), this caller's alone until the
        block ends. ``holder`` names the state a caller left in a sandbox (``sandbox.holder``): the
        sandbox still holding it is preferred, so a session's next call can skip the reset; any
        other sandbox comes with ``holder`` None."""
        key = bundle.version_hash()
        with self._lock:
            idle = self._idle.get(key)
            sandbox = None
            if idle:
                match = next((i for i, s in enumerate(idle) if holder is not None and s.holder == holder), None)
                sandbox = idle.pop(match if match is not None else -1)
                if idle:
                    self._idle.move_to_end(key)
                else:  # no empty buckets: eviction takes the oldest bucket's first sandbox
                    del self._idle[key]
        if sandbox is None:
            sandbox = Sandbox(bundle, self.config)  # outside the lock: start-up takes tens of ms
        elif holder is None or sandbox.holder != holder:
            sandbox.holder = None
        try:
            yield sandbox
        finally:
            self._give_back(key, sandbox)

    def _give_back(self, key: str, sandbox: Sandbox) -> None:
        evicted: list[Sandbox] = []
        with self._lock:
            self._idle.setdefault(key, []).append(sandbox)
            self._idle.move_to_end(key)
            while sum(len(v) for v in self._idle.values()) > self.size:
                oldest_key = next(iter(self._idle))
                bucket = self._idle[oldest_key]
                evicted.append(bucket.pop(0))
                if not bucket:
                    del self._idle[oldest_key]
        for old in evicted:
            old.close()

    @property
    def idle_count(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._idle.values())

    def close(self) -> None:
        for sandbox in self._items.values():
            sandbox.close()
        self._items.clear()
        with self._lock:
            buckets, self._idle = list(self._idle.values()), OrderedDict()
        for bucket in buckets:
            for sandbox in bucket:
                sandbox.close()
