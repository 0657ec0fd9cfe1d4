"""Self-hardening of a sandbox worker process (runs inside the worker, before its first request).

Layers, in the order that works (see docs/sandbox.md): rlimits, own unprivileged uid,
``no_new_privs``, Landlock (filesystem allow-list, TCP denied, signal/abstract-socket scoping),
seccomp deny-list. Stdlib + ctypes + pyseccomp only; no Django.

``harden(...)`` returns ``(applied_layers, missing_layers, error)``. In ``strict`` mode any missing
layer is an error, so the parent refuses the worker (fail closed). In ``auto`` mode missing layers
are reported and the worker runs degraded.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import sys
import sysconfig
from typing import Any

PR_SET_NO_NEW_PRIVS = 38
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1

# Filesystem access rights, by the ABI that introduced them.
FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_ABI1_ALL = (1 << 13) - 1
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1

MIN_LANDLOCK_ABI = 4

RLIMITS_DEFAULT = {
    "cpu_seconds": 60,
    "address_space_mb": 1024,
    "open_files": 64,
    "file_size_mb": 16,
    "processes": 16,
}

# Syscalls the worker never needs; each returns EPERM (clone3 returns ENOSYS so glibc falls back
# to clone, which is denied too: no threads, no children).
DENIED_SYSCALLS = (
    "socket", "socketpair", "execve", "execveat", "fork", "vfork", "clone",
    "ptrace", "process_vm_readv", "process_vm_writev",
    "mount", "umount2", "unshare", "setns", "pivot_root", "chroot",
    "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd",
    "io_uring_setup", "personality",
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid",
    "setgroups", "setrlimit", "prlimit64",
    "memfd_create", "pidfd_open", "pidfd_getfd", "pidfd_send_signal", "kcmp",
    "open_by_handle_at", "name_to_handle_at",
    "kexec_load", "init_module", "finit_module", "delete_module", "acct", "swapon", "swapoff",
    "reboot", "syslog",
)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, or 0 when Landlock is unavailable."""
    if not sys.platform.startswith("linux"):
        return 0
    res = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                        ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return int(res) if res > 0 else 0


def allowed_read_paths() -> list[str]:
    """Exact directories a worker may read and execute from. Never ``sys.prefix`` (trap 6)."""
    paths = {os.path.dirname(os.__file__)}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p:
            paths.add(p)
    multiarch = sysconfig.get_config_var("MULTIARCH")
    if multiarch:
        paths.add(f"/usr/lib/{multiarch}")
    paths.update({"/dev/null", "/dev/urandom"})
    return sorted(p for p in paths if os.path.exists(p))


def _open_rule_paths(scratch: str, read_paths: list[str]) -> list[tuple[str, int, bool]]:
    """Open O_PATH descriptors for the allow-list while we can still traverse every directory."""
    opened = []
    for path in [*read_paths, scratch]:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        opened.append((path, fd, os.path.isdir(path)))
    return opened


def _apply_landlock(abi: int, scratch: str, rule_paths: list[tuple[str, int, bool]]) -> None:
    fs_all = FS_ABI1_ALL
    if abi >= 2:
        fs_all |= FS_REFER
    if abi >= 3:
        fs_all |= FS_TRUNCATE
    if abi >= 5:
        fs_all |= FS_IOCTL_DEV
    attr = _RulesetAttr(handled_access_fs=fs_all, handled_access_net=0, scoped=0)
    size = 8
    if abi >= 4:
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        size = 24
    ruleset_fd = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                               ctypes.c_uint32(0))
    if ruleset_fd < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        file_rights = FS_EXECUTE | FS_READ_FILE | (FS_TRUNCATE if abi >= 3 else 0)
        read_exec = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
        for path, fd, is_dir in rule_paths:
            rights = fs_all if path == scratch else read_exec
            if not is_dir:
                rights = FS_READ_FILE if path.startswith("/dev/") else rights & file_rights
            rule = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
            res = _libc.syscall(SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset_fd),
                                ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH), ctypes.byref(rule),
                                ctypes.c_uint32(0))
            if res != 0:
                raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
        # No net-port rules at all: every TCP bind and connect is denied.
        if _libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset_fd), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset_fd)
        for _path, fd, _is_dir in rule_paths:
            os.close(fd)


def _apply_seccomp() -> None:
    import pyseccomp as seccomp

    flt = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            flt.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except Exception:  # noqa: BLE001 - a syscall this architecture does not have
            continue
    flt.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    flt.load()


def _apply_rlimits(limits: dict[str, Any]) -> None:
    def setl(which: int, value: int) -> None:
        resource.setrlimit(which, (value, value))

    cpu = int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    setl(resource.RLIMIT_AS, int(limits["address_space_mb"]) * 1024 * 1024)
    setl(resource.RLIMIT_NOFILE, int(limits["open_files"]))
    setl(resource.RLIMIT_FSIZE, int(limits["file_size_mb"]) * 1024 * 1024)
    setl(resource.RLIMIT_CORE, 0)
    setl(resource.RLIMIT_NPROC, int(limits["processes"]))


def harden(*, mode: str, uid: int, scratch: str, limits: dict[str, Any],
           skip: frozenset[str] = frozenset(),
           simulate_abi: int | None = None) -> tuple[list[str], list[str], str | None]:
    """Apply every layer the host supports. ``skip`` is for tests of the fail-closed path only."""
    applied: list[str] = []
    missing: list[str] = []

    def layer(name: str, fn) -> None:  # type: ignore[no-untyped-def]
        if name in skip:
            missing.append(f"{name}: skipped by request")
            return
        try:
            fn()
            applied.append(name)
        except Exception as exc:  # noqa: BLE001 - recorded, and fatal in strict mode
            missing.append(f"{name}: {type(exc).__name__}: {exc}")

    # Before the uid drop: sysconfig reads files lazily, and /root may not be traversable later.
    rule_paths = _open_rule_paths(scratch, allowed_read_paths())
    os.chdir(scratch)
    os.environ.clear()

    layer("rlimits", lambda: _apply_rlimits({**RLIMITS_DEFAULT, **limits}))

    def drop_uid() -> None:
        if os.getuid() != 0:
            raise PermissionError("not started as root, cannot switch to a per-slot uid")
        os.chown(scratch, uid, uid)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise PermissionError("uid drop did not take effect")

    layer("uid", drop_uid)

    def no_new_privs() -> None:
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")

    layer("no_new_privs", no_new_privs)

    abi = landlock_abi() if simulate_abi is None else min(landlock_abi(), simulate_abi)

    def landlock() -> None:
        if abi < MIN_LANDLOCK_ABI:
            raise OSError(f"Landlock ABI {abi} < {MIN_LANDLOCK_ABI} (kernel too old or Landlock disabled)")
        _apply_landlock(abi, scratch, rule_paths)

    layer("landlock", landlock)
    layer("seccomp", _apply_seccomp)

    error = None
    if mode == "strict" and missing:
        error = "strict sandbox: hardening layers unavailable: " + "; ".join(missing)
    return applied, missing, error
