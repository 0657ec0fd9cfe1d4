"""Security probes of the sandbox (docs: sandbox-and-jobs notes §4), and the start-up self-test.

Each probe is Python source run inside a probe-enabled worker. It sets ``result`` to a string
starting with ``"leaked"`` when the attack worked and ``"blocked"`` when it did not. A probe that
kills or hangs the worker counts as blocked when that is the expected defence (a deadline).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


def _attempt(body: str) -> str:
    """Wrap a probe body: success of the body means the attack worked."""
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    return f"""
try:
{indented}
    result = "leaked: " + str(detail)[:200]
except BaseException as exc:
    result = "blocked: " + type(exc).__name__ + ": " + str(exc)[:200]
"""


SCRATCH_WRITE = """
with open("probe.txt", "w") as fh:
    fh.write("ok")
with open("probe.txt") as fh:
    result = "ok" if fh.read() == "ok" else "broken"
"""
READ_PASSWD = _attempt("detail = open('/etc/passwd').read()")
READ_PROC1_CMDLINE = _attempt("detail = open('/proc/1/cmdline', 'rb').read()")
READ_PROC_SELF_ENVIRON = _attempt("""
detail = open('/proc/self/environ', 'rb').read()
if b'SCALEENV_PROBE_SECRET' not in detail and b'SECRET' not in detail:
    raise PermissionError('readable, but holds no secret: ' + repr(detail[:80]))
""")
READ_PARENT_ENVIRON = _attempt("""
import os
detail = open('/proc/%d/environ' % os.getppid(), 'rb').read()
""")
ENVIRON = _attempt("""
import os
detail = {k: v for k, v in os.environ.items() if k != 'PATH'}
if not detail:
    raise LookupError('environment is clean')
""")
SIGNAL_PARENT = _attempt("""
import os
os.kill(os.getppid(), 0)
detail = 'may signal the parent'
""")
EXEC_SHELL = _attempt("""
import os
os.execv('/bin/sh', ['sh', '-c', 'exit 0'])
detail = 'unreachable'
""")
FORK_BOMB = """
import os
children = 0
for _ in range(300):
    try:
        pid = os.fork()
    except BaseException:
        break
    if pid == 0:
        os._exit(0)
    children += 1
result = ("leaked: %d children" % children) if children else "blocked: no child could be created"
"""
ALLOCATE = _attempt("""
block = bytearray(3 * 1024 ** 3)
detail = 'allocated %d bytes' % len(block)
""")
INFINITE_LOOP = "while True:\n    pass\n"
THREAD = _attempt("""
import threading, time
threading.Thread(target=time.sleep, args=(5,)).start()
detail = 'thread started'
""")
SOCKET_CREATE = _attempt("""
import socket
socket.socket(socket.AF_INET, socket.SOCK_STREAM)
detail = 'socket created'
""")
OPEN_FDS = """
import os
open_fds = []
for fd in range(0, 256):
    try:
        os.fstat(fd)
        open_fds.append(fd)
    except OSError:
        pass
result = open_fds
"""


def read_file_probe(path: str) -> str:
    return _attempt(f"detail = open({path!r}).read()")


def write_outside_probe(path: str) -> str:
    return _attempt(f"""
with open({path!r}, 'w') as fh:
    fh.write('escaped')
detail = 'wrote ' + {path!r}
""")


def tcp_connect_probe(port: int) -> str:
    return _attempt(f"""
import socket
s = socket.create_connection(('127.0.0.1', {port}), timeout=1)
detail = 'connected to port {port}'
""")


def unix_connect_probe(path: str) -> str:
    return _attempt(f"""
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect({path!r})
detail = 'connected to {path}'
""")


# The start-up self-test: fast probes that need no listener or fixture files.
SELFTEST_PROBES: dict[str, str] = {
    "scratch_write": SCRATCH_WRITE,
    "read_passwd": READ_PASSWD,
    "read_proc1_cmdline": READ_PROC1_CMDLINE,
    "environ": ENVIRON,
    "parent_environ": READ_PARENT_ENVIRON,
    "signal_parent": SIGNAL_PARENT,
    "socket": SOCKET_CREATE,
    "exec_shell": EXEC_SHELL,
    "fork": FORK_BOMB,
    "thread": THREAD,
}


@dataclass
class SandboxStatus:
    mode: str
    layers: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    probes: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def degraded(self) -> bool:
        return bool(self.missing) or self.error is not None or any(
            not (v == "ok" or v.startswith("blocked")) for k, v in self.probes.items())

    @property
    def leaks(self) -> list[str]:
        return [k for k, v in self.probes.items() if not (v == "ok" or v.startswith("blocked"))]

    def warning(self) -> str | None:
        if self.error:
            return f"Sandbox unavailable: {self.error}"
        if not self.degraded:
            return None
        parts = []
        if self.missing:
            parts.append("missing layers: " + "; ".join(self.missing))
        if self.leaks:
            parts.append("probes not blocked: " + ", ".join(self.leaks))
        return "Sandbox running DEGRADED (SCALEENV_SANDBOX=auto): " + " | ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "layers": self.layers, "missing": self.missing, "probes": self.probes,
                "error": self.error, "degraded": self.degraded, "warning": self.warning()}


def run_selftest(config: Any) -> SandboxStatus:
    """Spawn a probe-enabled worker with ``config``'s hardening and run the fast probes."""
    from dataclasses import replace

    from .executor import EnvironmentBundle, Sandbox, SandboxError

    status = SandboxStatus(mode=config.mode)
    try:
        sandbox = Sandbox(EnvironmentBundle(tools={}, schema={"tables": {}}, state={}),
                          replace(config, probes=True, call_timeout=max(config.call_timeout, 2.0)))
    except SandboxError as exc:
        status.error = str(exc)
        return status
    try:
        status.layers, status.missing = sandbox.layers, sandbox.missing_layers
        for name, code in SELFTEST_PROBES.items():
            reply = sandbox.probe(code)
            if "lost" in reply:
                # Exec replacing the worker, or a crash: the attack reached the kernel.
                status.probes[name] = f"leaked: worker lost ({reply['lost']})"
            else:
                status.probes[name] = str(reply.get("result") if "result" in reply else reply.get("error"))
    finally:
        sandbox.close()
    return status


_status_cache: dict[tuple[Any, ...], SandboxStatus] = {}
_status_lock = threading.Lock()


def sandbox_status(config: Any) -> SandboxStatus:
    """The self-test result for this process and config (run once, then cached)."""
    key = (config.mode, config.skip_layers, config.python, os.getpid())
    with _status_lock:
        if key not in _status_cache:
            status = run_selftest(config)
            if status.warning():
                logger.warning(status.warning())
            _status_cache[key] = status
        return _status_cache[key]
