"""SQLite writers queue on the site backend's write lock (scaleenv_site/sqlite): threads of a process
and other processes wait for the holder and get it when it lets go, a wait gives up with SQLite's
own "database is locked", a process that dies holding it loses it, and Django's transactions take it
at BEGIN and give it back at COMMIT, ROLLBACK and close."""

import multiprocessing
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from django.db import connection, connections, transaction

from scaleenv_site.sqlite.base import DatabaseWrapper, WriteLock

FORK = multiprocessing.get_context("fork")


def _try_in_thread(lock: WriteLock, timeout: float) -> tuple[threading.Thread, list[str]]:
    outcome: list[str] = []

    def attempt() -> None:
        try:
            lock.acquire(timeout)
        except sqlite3.OperationalError as exc:
            outcome.append(str(exc))
        else:
            outcome.append("acquired")
            lock.release()

    thread = threading.Thread(target=attempt)
    thread.start()
    return thread, outcome


def test_a_thread_waits_for_the_holder_and_gets_the_lock_when_it_lets_go(tmp_path):
    lock = WriteLock(str(tmp_path / "db-writers"))
    lock.acquire(1.0)
    thread, outcome = _try_in_thread(lock, 5.0)
    time.sleep(0.2)
    assert outcome == []  # still waiting
    lock.release()
    thread.join(2.0)
    assert outcome == ["acquired"]


def test_a_wait_gives_up_after_the_timeout_with_database_is_locked(tmp_path):
    lock = WriteLock(str(tmp_path / "db-writers"))
    lock.acquire(1.0)
    began = time.monotonic()
    thread, outcome = _try_in_thread(lock, 0.2)
    thread.join(2.0)
    assert outcome == ["database is locked"] and 0.15 < time.monotonic() - began < 1.5
    lock.release()


def _child_attempt(path: str, timeout: float, lock: WriteLock | None, results) -> None:
    # ``lock`` is the parent's object (inherited over fork) or None for a new one of the same file
    target = lock if lock is not None else WriteLock(path)
    try:
        target.acquire(timeout)
    except sqlite3.OperationalError as exc:
        results.put(str(exc))
    else:
        results.put("acquired")
        target.release()


def test_another_process_is_kept_out_while_held_even_with_the_lock_it_inherited_over_fork(tmp_path):
    path = str(tmp_path / "db-writers")
    lock = WriteLock(path)
    lock.acquire(1.0)
    lock.release()  # the descriptor is open now: a child inherits it, and must not share the flock
    lock.acquire(1.0)
    results = FORK.Queue()
    for inherited in (lock, None):
        # The child's thread lock is a copy of a held lock: only the inherited object meets it, so
        # give that one a fresh thread lock, as a forked server process's first request would find.
        child = FORK.Process(target=_child_attempt, args=(path, 0.3, inherited, results))
        if inherited is not None:
            inherited_state = inherited._threads
            inherited._threads = threading.Lock()
        child.start()
        child.join(5.0)
        if inherited is not None:
            inherited._threads = inherited_state
        assert results.get(timeout=1.0) == "database is locked"
    lock.release()
    child = FORK.Process(target=_child_attempt, args=(path, 2.0, None, results))
    child.start()
    child.join(5.0)
    assert results.get(timeout=1.0) == "acquired"


def _die_holding(path: str) -> None:
    WriteLock(path).acquire(1.0)
    os._exit(0)


def test_a_process_that_dies_holding_the_lock_loses_it(tmp_path):
    path = str(tmp_path / "db-writers")
    child = FORK.Process(target=_die_holding, args=(path,))
    child.start()
    child.join(5.0)
    lock = WriteLock(path)
    lock.acquire(1.0)  # would raise "database is locked" if the dead process still held it
    lock.release()


def _other_thread_gets_the_lock(timeout: float = 0.2) -> bool:
    thread, outcome = _try_in_thread(connection.write_lock, timeout)
    thread.join(timeout + 2.0)
    return outcome == ["acquired"]


@pytest.mark.django_db(transaction=True)
def test_django_transactions_hold_the_lock_from_begin_to_commit_rollback_or_close():
    if not isinstance(connections["default"], DatabaseWrapper):  # ``connection`` is a proxy
        pytest.skip("the write lock is the SQLite backend's")
    assert _other_thread_gets_the_lock()
    with transaction.atomic():
        assert not _other_thread_gets_the_lock()  # taken at BEGIN IMMEDIATE
        with transaction.atomic():  # a savepoint takes nothing more
            pass
        assert not _other_thread_gets_the_lock()
    assert _other_thread_gets_the_lock()  # COMMIT gave it back
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        1 / 0
    assert _other_thread_gets_the_lock()  # ROLLBACK gave it back
    transaction.set_autocommit(False)
    connection.ensure_connection()
    connection._start_transaction_under_autocommit()
    assert not _other_thread_gets_the_lock()
    connection.close()
    assert _other_thread_gets_the_lock()  # closing the connection gave it back


def test_destroying_a_test_database_removes_its_lock_file(tmp_path):
    database = tmp_path / "test-db.sqlite3"
    database.write_bytes(b"")
    lock_file = Path(f"{database.resolve()}-writers")
    WriteLock(str(lock_file)).acquire(1.0)  # creates the file
    assert lock_file.exists()
    DatabaseWrapper({**connection.settings_dict, "NAME": str(database)}).creation._destroy_test_db(str(database), 0)
    assert not database.exists() and not lock_file.exists()
