"""Django's SQLite backend, with write transactions queued on a lock instead of SQLite's busy handler.

A write transaction (``BEGIN IMMEDIATE``, the site's transaction mode) that finds the database
locked is retried by SQLite's busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25 … ms between
tries: with four server threads writing short transactions, 42 % of the session API's
``BEGIN IMMEDIATE`` waited more than 1 ms (p99 21 ms) for locks held ~0.2 ms. Here writers first
queue on a lock of their own, taken before ``BEGIN`` and given back at ``COMMIT``/``ROLLBACK``:
threads of a process on a ``threading.Lock`` (woken at once), processes on an ``flock`` of a file
beside the database (``<database>-writers``; tried without blocking, then polled at most 1 ms
apart). Both give up after the connection's ``timeout``, with SQLite's own "database is locked".
A writer that does not take the lock (another program, a plain autocommit statement) still
meets SQLite's busy handler, as before; a process that dies holding the ``flock`` loses it.
"""
from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path
from typing import Any

from django.db.backends.sqlite3 import base, creation

_POLL_FIRST_S, _POLL_MAX_S = 0.0001, 0.001


class WriteLock:
    """One database file's writers: a lock for this process's threads, an ``flock`` across processes."""

    def __init__(self, path: str | None) -> None:
        self.path = path  # None for an in-memory database (only this process reaches it)
        self._threads = threading.Lock()
        self._file: int | None = None
        self._file_pid = 0

    def _descriptor(self) -> int:
        # Opened per process: a descriptor inherited over fork shares the parent's flock.
        if self._file is None or self._file_pid != os.getpid():
            self._file = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._file_pid = os.getpid()
        return self._file

    def acquire(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if not self._threads.acquire(timeout=max(timeout, 0.0)):
            raise base.Database.OperationalError("database is locked")
        if self.path is None:
            return
        try:
            descriptor, pause = self._descriptor(), _POLL_FIRST_S
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise base.Database.OperationalError("database is locked") from None
                    time.sleep(pause)
                    pause = min(pause * 2, _POLL_MAX_S)
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        try:
            if self.path is not None and self._file is not None and self._file_pid == os.getpid():
                fcntl.flock(self._file, fcntl.LOCK_UN)
        finally:
            self._threads.release()


_locks: dict[str, WriteLock] = {}
_locks_guard = threading.Lock()


def write_lock_for(name: str, in_memory: bool) -> WriteLock:
    key = name if in_memory else str(Path(name).resolve())
    with _locks_guard:
        if key not in _locks:
            _locks[key] = WriteLock(None if in_memory else f"{key}-writers")
        return _locks[key]


class DatabaseCreation(creation.DatabaseCreation):
    def _destroy_test_db(self, test_database_name: str, verbosity: int) -> None:
        super()._destroy_test_db(test_database_name, verbosity)
        if test_database_name and not self.is_in_memory_db(test_database_name):
            Path(f"{Path(test_database_name).resolve()}-writers").unlink(missing_ok=True)


class DatabaseWrapper(base.DatabaseWrapper):
    creation_class = DatabaseCreation
    _holds_write_lock = False

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        self._write_lock_timeout = float(params.get("timeout", 5.0))
        return params

    _write_lock: tuple[str, WriteLock] | None = None

    @property
    def write_lock(self) -> WriteLock:
        name = str(self.settings_dict["NAME"])  # the test runner renames the database
        if self._write_lock is None or self._write_lock[0] != name:
            self._write_lock = (name, write_lock_for(name, self.is_in_memory_db()))
        return self._write_lock[1]

    def acquire_write_lock(self) -> None:
        """Queue for the database's write lock (call before ``BEGIN IMMEDIATE``)."""
        if not self._holds_write_lock:
            self.write_lock.acquire(getattr(self, "_write_lock_timeout", 5.0))
            self._holds_write_lock = True

    def release_write_lock(self) -> None:
        """Give the lock back (after ``COMMIT`` or ``ROLLBACK``); nothing if not held."""
        if self._holds_write_lock:
            self._holds_write_lock = False
            self.write_lock.release()

    def _start_transaction_under_autocommit(self) -> None:
        if self.transaction_mode != "IMMEDIATE":
            # A deferred transaction takes SQLite's write lock only at its first write, after this.
            return super()._start_transaction_under_autocommit()
        self.acquire_write_lock()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self.release_write_lock()
            raise

    def _commit(self) -> None:
        try:
            return super()._commit()
        finally:
            self.release_write_lock()

    def _rollback(self) -> None:
        try:
            return super()._rollback()
        finally:
            self.release_write_lock()

    def _close(self) -> None:
        try:
            return super()._close()
        finally:
            self.release_write_lock()
