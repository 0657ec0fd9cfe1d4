"""Episodes driven over HTTP by an outside agent (an RL trainer, an eval harness).

Correct under any concurrency, in threaded and multi-process servers:

* tool calls and scripted-user messages are serialized by a version check: the work (the sandbox
  call, the user's reply) is done on a snapshot of the session read without a lock, then one short
  transaction moves the session on only if no other call did meanwhile (a conditional ``UPDATE`` on
  its step count and state version), and appends the steps; a call that lost the race is redone on
  the new snapshot (calls of one process on one session also queue on a process-local lock), and
  only a session kept busy past SCALEENV_SESSION_BUSY_SECONDS answers 409. So each acknowledged
  call is stored, in order, and the database is held for milliseconds, not for the tool's run
  (on SQLite a write transaction locks the whole database);
* finishing, expiring and the LLM user's turns lock the session's row (``SELECT … FOR UPDATE`` on
  PostgreSQL; SQLite's immediate transactions lock the database);
* steps are appended as ``RunStep`` rows (never a rewritten list);
* the state is s0 plus the diffs of the session's successful calls; each process keeps the latest
  state of recently used sessions and rebuilds it from the rows when another process served the
  last call (the state version says which); a sandbox that does not hold the session's state gets
  s0 (which its worker then keeps, by task and content hash) and the diffs, not the whole state;
* tool code runs in a sandbox leased to this request alone;
* ``finish`` is a conditional transition out of ``running``; once finished, every call is refused.

Bad input is an error observation the agent can learn from (unknown tool, invalid arguments), never
a server error. Limits come from settings (README, "Limits").
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import sqlite3
import threading
import time
from collections import OrderedDict
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models.base import ModelState
from django.utils import timezone
from jsonschema import Draft202012Validator, FormatChecker

from environments.models import Domain
from environments.runtime import statekit
from environments.runtime.executor import EnvironmentBundle, Resume
from scaleenv_site.api import BadInput, check_value
from tasks.instantiation import ToolView, domain_bundle
from tasks.rollout.episode import REWARDED, STOP, score, system_prompt, tool_message_content
from tasks.reward import with_rows_shared
from tasks.rollout.user import ScriptedUser
from tasks.spec import TaskSpec, build_task_spec

from . import selectors
from .models import Run, RunStep, Task
from .services import sandbox_pool, semantic_judge

TRUNCATED = "…[truncated {n} more characters]"


class SessionError(Exception):
    """A request the session cannot take: a 4xx with this message."""

    status = 409


class SessionClosed(SessionError):
    status = 409


class SessionBusy(SessionError):
    """Other calls on the session kept it moving for longer than SCALEENV_SESSION_BUSY_SECONDS."""

    status = 409


class TooManySessions(SessionError):
    status = 429


class SimulatedUserFailed(SessionError):
    """The LLM user's model gave no usable answer (after the client's retries)."""

    status = 502


def _llm_user(spec: TaskSpec, task_id: int, run_id: int | None, said: list[str] | None = None,
              heard: list[str] | None = None) -> Any:
    """The LLM user simulator of a session, rebuilt from the stored conversation (any process)."""
    from environments.services import llm_client
    from tasks.rollout.llm import LLMUser

    client = llm_client(task=task_id, session=run_id)
    return LLMUser(spec, client) if said is None else LLMUser.replay(spec, client, said, heard or [])


# ---------------------------------------------------------------------------------------------
# The per-process state cache


@dataclass(frozen=True)
class _Kept:
    """A session's state as this process last left it: its version (executed calls), the state,
    the ids its episode used, and the diffs of its successful calls since s0 (a sandbox that does not
    hold the state rebuilds it from s0, which its worker keeps, and these)."""

    version: int
    state: dict[str, Any]
    ids_used: int
    diffs: tuple[dict[str, Any], ...]


class _States:
    """run id -> the session's :class:`_Kept` state, for the sessions this process served last.
    Another process's call moves the version on, so a stale entry is never used."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[int, _Kept] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_id: int, version: int) -> _Kept | None:
        with self._lock:
            item = self._items.get(run_id)
            if item is None or item.version != version:
                return None
            self._items.move_to_end(run_id)
            return item

    def put(self, run_id: int, kept: _Kept) -> None:
        with self._lock:
            self._items[run_id] = kept
            self._items.move_to_end(run_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def drop(self, run_id: int) -> None:
        with self._lock:
            self._items.pop(run_id, None)


_states = _States(getattr(settings, "SCALEENV_SESSION_STATE_CACHE", 256))


class _Users:
    """run id -> (agent messages answered, scripted user) as this process left it after the
    session's last message, so the next message skips replaying the conversation (tool calls in
    between do not change the user). An entry is taken out while a message is being answered (the
    user changes as it answers) and put back only once stored."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[int, tuple[int, ScriptedUser]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, run_id: int, answered: int) -> ScriptedUser | None:
        with self._lock:
            item = self._items.pop(run_id, None)
        return item[1] if item is not None and item[0] == answered else None

    def put(self, run_id: int, answered: int, user: ScriptedUser) -> None:
        with self._lock:
            self._items[run_id] = (answered, user)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


_users = _Users(getattr(settings, "SCALEENV_SESSION_STATE_CACHE", 256))


def _capped(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[:limit] + TRUNCATED.format(n=len(text) - limit), True


@dataclass
class _Served:
    """What a session call needs of its task: the spec, the environment bundle, the tools and their
    argument validators (compiled once)."""

    spec: TaskSpec
    bundle: EnvironmentBundle
    tools: dict[str, ToolView]
    validators: dict[str, Draft202012Validator] = field(default_factory=dict)

    def validator(self, tool: ToolView) -> Draft202012Validator:
        found = self.validators.get(tool.name)
        if found is None:
            found = self.validators[tool.name] = Draft202012Validator(tool.parameters, format_checker=FormatChecker())
        return found


class _Specs:
    """(task id, content hash, domain spec hash) -> what serving the task takes, for the tasks this
    process served last. A stored task's content never changes (its hash says so)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[int, str, str], _Served] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, task: Task) -> _Served:
        """For a task row that may hold only its id, content hash and domain."""
        key = (task.pk, task.content_hash, task.domain.spec_hash)
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
                return item
        full = task if _loaded(task) else Task.objects.select_related("domain").get(pk=task.pk)
        view = selectors.domain_view(full.domain)
        spec = build_task_spec(view, full)
        # The gold state's untouched rows become s0's own: the final score meets them by identity.
        spec = dataclasses.replace(spec, s_gt=with_rows_shared(spec.s0, spec.s_gt))
        item = _Served(spec, domain_bundle(view), view.tools)
        with self._lock:
            self._items[key] = item
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return item


@lru_cache(maxsize=256)
def _qmark(sql: str) -> str:
    from django.db.backends.sqlite3.base import FORMAT_QMARK_REGEX

    return FORMAT_QMARK_REGEX.sub("?", sql).replace("%%", "%")


def _run(cursor: Any, sql: str, parameters: list[Any] | None = None) -> None:
    """``cursor.execute(sql, parameters)``. On SQLite, when nothing records or wraps queries (DEBUG,
    CaptureQueriesContext, execute_wrappers take Django's own path), the statement's ``%s``
    placeholders are rewritten once per text instead of on every call: Django's rewrite (a regex
    behind a lazy object, per statement) cost ~4 % of a session call's CPU."""
    db = cursor.db
    if db.vendor != "sqlite" or db.execute_wrappers or db.queries_logged:
        cursor.execute(sql, parameters)
        return
    db.validate_no_broken_transaction()
    with db.wrap_database_errors:
        if parameters is None:
            sqlite3.Cursor.execute(cursor.cursor, sql)
        else:
            sqlite3.Cursor.execute(cursor.cursor, _qmark(sql), parameters)


def session_task(task_id: int) -> Task | None:
    """What starting a session needs of a task row: its id, content hash and domain (with the
    domain's spec hash and slug), other columns deferred; one prepared statement."""
    using = router.db_for_read(Task)
    q = connections[using].ops.quote_name
    with connections[using].cursor() as cursor:
        _run(cursor, f"SELECT t.{q('id')}, t.{q('content_hash')}, t.{q('domain_id')}, d.{q('spec_hash')}, "
                       f"d.{q('slug')} FROM {q(Task._meta.db_table)} t INNER JOIN {q(Domain._meta.db_table)} d "
                       f"ON d.{q('id')} = t.{q('domain_id')} WHERE t.{q('id')} = %s", [task_id])
        row = cursor.fetchone()
    if row is None:
        return None
    task = _from_row(Task, using, ("id", "content_hash", "domain_id"), row[:3])
    task._state.fields_cache["domain"] = _from_row(Domain, using, ("id", "spec_hash", "slug"), (row[2], row[3], row[4]))
    return task


def _loaded(task: Task) -> bool:
    return not ({"s0", "s_gt", "gold_chain", "script", "instruction"} & task.get_deferred_fields())


_specs = _Specs(getattr(settings, "SCALEENV_SESSION_STATE_CACHE", 256))


def _spec(task: Task) -> TaskSpec:
    return _specs.get(task).spec


# ---------------------------------------------------------------------------------------------
# Starting


def start_session(task: Task, owner: Any, agent_model: str = "", user: str = "scripted",
                  ) -> tuple[Run, list[dict[str, Any]], list[dict[str, Any]]]:
    """A new session on ``task`` for ``owner``: (run, first messages, tool schemas). ``user`` is the
    simulated user: ``scripted`` (deterministic) or ``llm`` (a model reading the task's scenario)."""
    limit = settings.SCALEENV_SESSION_MAX_OPEN
    using = router.db_for_write(Run)
    connection = connections[using]
    q = connection.ops.quote_name

    def open_sessions() -> int:
        return _count(f"{q('owner_id')} = %s AND {q('agent')} = %s AND {q('termination')} = %s",
                      [owner.pk, "external", Run.Termination.RUNNING], using)

    # Idle sessions hold no slot: at the cap, they are expired first (not on every start: a query less).
    if open_sessions() >= limit and (not expire_idle_sessions(owner=owner) or open_sessions() >= limit):
        raise TooManySessions(f"this account already has {limit} open sessions (SCALEENV_SESSION_MAX_OPEN); "
                              "finish some first")
    spec = _spec(task)  # the task row may hold only its id, content hash and domain
    if user == "llm":  # asked before the transaction: no lock is held while the model answers
        from environments.llm import LLMError

        try:
            opening = _llm_user(spec, task.pk, None).first_message()
        except LLMError as exc:
            raise SimulatedUserFailed(f"the simulated user's model failed ({exc.outcome}): {exc}") from exc
    else:
        opening = ScriptedUser(spec.script).first_message() if spec.script else spec.instruction
    messages = [{"role": "system", "content": system_prompt(spec)}, {"role": "user", "content": opening}]
    run = Run(task=task, agent="external", agent_model=agent_model[:120], user=user, seed=0,
              termination=Run.Termination.RUNNING, owner=owner, step_count=1, last_activity_at=timezone.now())
    first = RunStep(index=0, kind=RunStep.Kind.USER, content=opening)
    with transaction.atomic(using=using):
        # The trial number counts the task's sessions before this one: read under the write lock.
        run.trial = _count(f"{q('task_id')} = %s AND {q('agent')} = %s", [task.pk, "external"], using)
        with connection.cursor() as cursor:
            returning = connection.features.can_return_columns_from_insert
            _run(cursor, *_insert_statement(connection, [run], returning_pk=returning))
            run.pk = cursor.fetchone()[0] if returning else cursor.lastrowid
            run._state.adding, run._state.db = False, using
            first.run = run
            _run(cursor, *_insert_statement(connection, [first]))
        # The first call then starts from memory instead of reloading s0, the first message from a fresh user.
        transaction.on_commit(lambda: _states.put(run.pk, _Kept(0, spec.s0, 0, ())))
        if user != "llm" and spec.script is not None:
            transaction.on_commit(lambda: _users.put(run.pk, 0, ScriptedUser(spec.script)))
    return run, messages, spec.tools


# ---------------------------------------------------------------------------------------------
# Calls


def _locked(run_id: int, owner: Any) -> Run:
    """The session row, locked until the transaction ends (only the owner's, only sessions)."""
    run = (Run.objects.select_for_update().select_related("task", "task__domain")
           .only("id", "termination", "user", "step_count", "ids_used", "state_version", "agent_messages",
                 "tool_errors", "last_activity_at", "created_at", "owner_id", "task__id", "task__content_hash",
                 "task__domain__id", "task__domain__spec_hash", "task__domain__slug")
           .filter(pk=run_id, owner=owner, agent="external").first())
    if run is None:
        raise Run.DoesNotExist(run_id)
    return run


def _snapshot_sql(using: str) -> str:
    """One statement reading what a call needs of its session, its task and the domain: built once
    per database (Django's query compiler costs more than the query, on every call). The session's
    columns come in the model's field order, as ``Model.from_db`` takes them."""
    found = _snapshot_statements.get(using)
    if found is None:
        q = connections[using].ops.quote_name
        columns = ", ".join(f"r.{q(f.column)}" for f in _snapshot_run_fields())
        found = _snapshot_statements[using] = (
            f"SELECT {columns}, t.{q('content_hash')}, t.{q('domain_id')}, d.{q('spec_hash')}, d.{q('slug')} "
            f"FROM {q(Run._meta.db_table)} r INNER JOIN {q(Task._meta.db_table)} t ON t.{q('id')} = r.{q('task_id')} "
            f"INNER JOIN {q(Domain._meta.db_table)} d ON d.{q('id')} = t.{q('domain_id')} "
            f"WHERE r.{q('id')} = %s AND r.{q('owner_id')} = %s AND r.{q('agent')} = %s")
    return found


@lru_cache(maxsize=1)
def _snapshot_run_fields() -> list[Any]:
    wanted = {"id", "termination", "user", "step_count", "ids_used", "state_version", "agent_messages", "tool_errors",
              "last_activity_at", "created_at", "owner_id", "task_id"}
    return [f for f in Run._meta.concrete_fields if f.attname in wanted]


@lru_cache(maxsize=1)
def _snapshot_layout() -> tuple[list[str], list[int]]:
    """The snapshot's session columns by attribute name, and which of them are date-times."""
    fields = _snapshot_run_fields()
    return [f.attname for f in fields], [i for i, f in enumerate(fields) if f.get_internal_type() == "DateTimeField"]


_snapshot_statements: dict[str, str] = {}


# Calls of this process on one session queue here instead of racing each other's version checks
# (striped: a fixed number of locks, whatever the number of sessions).
_session_queues = [threading.Lock() for _ in range(64)]


def _snapshot(run_id: int, owner: Any) -> Run:
    """The session row as it is now, read without a lock; ends it first (under the lock) when it
    idled too long or reached its step limit, and refuses a finished one."""
    using = router.db_for_read(Run)
    with connections[using].cursor() as cursor:
        _run(cursor, _snapshot_sql(using), [run_id, owner.pk, "external"])
        row = cursor.fetchone()
    if row is None:
        raise Run.DoesNotExist(run_id)
    names, instants = _snapshot_layout()
    values = list(row[:len(names)])
    for i in instants:  # SQLite hands back naive UTC datetimes; the ORM would make them aware
        if values[i] is not None and values[i].tzinfo is None:
            values[i] = values[i].replace(tzinfo=dt_timezone.utc)
    run = _from_row(Run, using, names, values)
    content_hash, domain_id, spec_hash, slug = row[len(names):]
    # The task and its domain as select_related would load them: only these columns, the rest deferred.
    task = _from_row(Task, using, ("id", "content_hash", "domain_id"), (run.task_id, content_hash, domain_id))
    task._state.fields_cache["domain"] = _from_row(Domain, using, ("id", "spec_hash", "slug"),
                                                    (domain_id, spec_hash, slug))
    run._state.fields_cache["task"] = task
    if not run.is_open:
        raise SessionClosed(f"session {run.pk} is finished ({run.termination}); start a new one")
    idle = timedelta(seconds=settings.SCALEENV_SESSION_IDLE_SECONDS)
    if (run.last_activity_at and timezone.now() - run.last_activity_at > idle) or (
            run.step_count >= settings.SCALEENV_SESSION_MAX_STEPS):
        with transaction.atomic():
            closed = _close_if_due(_locked(run_id, owner))
        if closed is not None:
            raise SessionClosed(closed)
    return run


@lru_cache(maxsize=16)
def _row_defaults(model: Any) -> tuple[dict[str, Any], tuple[tuple[str, Any], ...]]:
    """A model's column defaults by attribute name: the constant ones, and those made per row."""
    constant, made = {}, []
    for f in model._meta.concrete_fields:
        if f.has_default() and callable(f.default):
            made.append((f.attname, f.default))
        else:
            constant[f.attname] = f.get_default()
    return constant, tuple(made)


def _new_row(model: Any, **values: Any) -> Any:
    """``model(**values)`` (columns by attribute name) without ``Model.__init__``, whose per-field work
    and init signals cost more than a step's insert. Only for models nothing listens to at init
    (tests/tasks/test_sessions_api.py holds both to the ORM's instances)."""
    constant, made = _row_defaults(model)
    instance = model.__new__(model)
    instance._state = ModelState()
    row = instance.__dict__
    row.update(constant)
    for name, make in made:
        row[name] = make()
    row.update(values)
    return instance


def _from_row(model: Any, using: str, names: Any, values: Any) -> Any:
    """A stored instance with these columns (``values`` by ``names``; the other columns deferred), as
    ``Model.from_db`` makes one, without ``Model.__init__``, which costs more than the query here.
    (``from_db`` takes a subset of values in the model's field order, not in the order of
    ``names``: reading ``id, content_hash, domain_id`` through it swapped the last two.) Only for
    models nothing listens to at init (tests/tasks/test_sessions_api.py checks both)."""
    instance = model.__new__(model)
    instance._state = ModelState()
    instance._state.adding, instance._state.db = False, using
    instance.__dict__.update(zip(names, values))
    return instance


_moves: dict[tuple[str, tuple[str, ...], bool], tuple[str, list[Any]]] = {}  # a few shapes, one per call site


def _move_statement(connection: Any, names: tuple[str, ...], add_errors: bool) -> tuple[str, list[Any]]:
    """The UPDATE that moves a session on (setting ``names``, and adding to ``tool_errors``), only if
    it is still where the caller read it, and the preparer of each set value; built once per shape."""
    key = (connection.vendor, names, add_errors)
    found = _moves.get(key)
    if found is None:
        q = connection.ops.quote_name
        fields = [Run._meta.get_field(name) for name in names]
        assignments = [f"{q(field.column)} = %s" for field in fields]
        if add_errors:
            assignments.append(f"{q('tool_errors')} = {q('tool_errors')} + %s")
        found = _moves[key] = (
            f"UPDATE {q(Run._meta.db_table)} SET {', '.join(assignments)} WHERE {q('id')} = %s AND "
            f"{q('termination')} = %s AND {q('step_count')} = %s AND {q('state_version')} = %s",
            [_preparer(field, connection.vendor) for field in fields])
    return found


def _advance(run: Run, steps: list[RunStep], errors: int = 0, **columns: Any) -> bool:
    """Append ``steps`` (numbered from the snapshot's step count) and move the session on, in one
    short transaction, only if no other call moved it since ``run`` was read; False (nothing
    written) if one did. ``errors`` is added to ``tool_errors``; ``columns`` are more columns of
    the session to set (the new state version, a finish's score).

    Both statements are built before the transaction begins and without Django's query compiler
    (it cost more than the statements): on SQLite the transaction holds the whole database, so it
    should hold it only for the writes."""
    using = router.db_for_write(Run)
    connection = connections[using]
    now = timezone.now()
    values = {"step_count": run.step_count + len(steps), "last_activity_at": now, **columns}
    statement, preparers = _move_statement(connection, tuple(values), bool(errors))
    parameters = [prepare(value, connection) for prepare, value in zip(preparers, values.values())]
    if errors:
        parameters.append(errors)
    move = (statement, [*parameters, run.pk, Run.Termination.RUNNING, run.step_count, run.state_version])
    for offset, step in enumerate(steps):
        step.run_id, step.index = run.pk, run.step_count + offset
    one_statement = connection.vendor == "postgresql" and not connection.in_atomic_block
    append = _insert_statement(connection, steps, typed=one_statement)
    if one_statement:
        # One statement, atomic on its own: the UPDATE feeds the INSERT, which adds no row when the
        # UPDATE matched none. One round trip instead of four (BEGIN, UPDATE, INSERT, COMMIT).
        insert_sql, insert_parameters = append
        columns, _, rows = insert_sql.partition(" VALUES ")
        statement = (f"WITH moved AS ({move[0]} RETURNING 1) {columns} "
                     f"SELECT * FROM (VALUES {rows}) AS appended WHERE EXISTS (SELECT 1 FROM moved)")
        with connection.cursor() as cursor:
            _run(cursor, statement, [*move[1], *insert_parameters])
            if cursor.rowcount != len(steps):
                return False
    elif connection.vendor == "sqlite" and not connection.in_atomic_block:
        # The same transaction as atomic() would run (BEGIN IMMEDIATE: the write lock first), written
        # out: Django's transaction bookkeeping cost more than the two statements.
        # Writers queue on the site backend's write lock (scaleenv_site.sqlite), not SQLite's busy handler.
        queue = getattr(connection, "acquire_write_lock", None)
        with connection.cursor() as cursor:
            if queue is not None:
                queue()
            try:
                _run(cursor, "BEGIN IMMEDIATE")
                try:
                    _run(cursor, *move)
                    moved = cursor.rowcount == 1
                    if moved:
                        _run(cursor, *append)
                    _run(cursor, "COMMIT" if moved else "ROLLBACK")
                except BaseException:
                    if connection.connection.in_transaction:
                        _run(cursor, "ROLLBACK")
                    raise
            finally:
                if queue is not None:
                    connection.release_write_lock()
        if not moved:
            return False
    else:
        with transaction.atomic(using=using), connection.cursor() as cursor:
            _run(cursor, *move)
            if cursor.rowcount != 1:
                return False
            _run(cursor, *append)
    run.step_count += len(steps)
    return True


def _insert_statement(connection: Any, rows: list[Any], returning_pk: bool = False,
                      typed: bool = False) -> tuple[str, list[Any]]:
    """``INSERT`` of new model instances of one model (all columns but the key, values prepared as
    Django would), built without the query compiler; with ``returning_pk``, it returns the key;
    ``typed`` casts each value to its column's type (for VALUES read by a SELECT, where a NULL or
    a string would otherwise be text)."""
    meta = rows[0]._meta
    q = connection.ops.quote_name
    fields, preparers = _insert_columns(meta.model, connection.vendor)
    values = [prepare(f.pre_save(row, True), connection) for row in rows for f, prepare in zip(fields, preparers)]
    slots = [f"%s::{f.cast_db_type(connection)}" if typed else "%s" for f in fields]
    placeholders = "(" + ", ".join(slots) + ")"
    statement = (f"INSERT INTO {q(meta.db_table)} ({', '.join(q(f.column) for f in fields)}) "
                 f"VALUES {', '.join([placeholders] * len(rows))}")
    if returning_pk:
        statement += f" RETURNING {q(meta.pk.column)}"
    return statement, values


_compiled: dict[tuple[str, str], tuple[str, list[int]] | None] = {}  # statement, order of the parameters


def _values(name: str, query: Any, parameters: list[Any], using: str,
            json_columns: tuple[int, ...] = ()) -> list[tuple[Any, ...]]:
    """The rows of ``query(*parameters)`` (a ``values_list`` queryset), compiled by Django once per
    database and then run as plain SQL: on a session call the compiler cost more than the query.
    The columns at ``json_columns`` (JSONFields) are decoded as the ORM would."""
    key = (name, using)
    if key not in _compiled:
        # Compiled with distinct stand-ins of the parameters' types (in range of any column they stand
        # for), found again among the statement's parameters (Django orders the conditions its own
        # way); reused only if each stand-in is there once, as it was given.
        stand_ins = [f"stand-in-{i}" if isinstance(p, str) else 700_000_001 + i for i, p in enumerate(parameters)]
        sql, compiled_parameters = query(*stand_ins).query.get_compiler(using).as_sql()
        order = [stand_ins.index(p) if p in stand_ins else -1 for p in compiled_parameters]
        _compiled[key] = (sql, order) if sorted(order) == list(range(len(stand_ins))) else None
    found = _compiled[key]
    if found is None:
        return [tuple(row) for row in query(*parameters).using(using)]
    sql, order = found
    with connections[using].cursor() as cursor:
        _run(cursor, sql, [parameters[i] for i in order])
        rows = cursor.fetchall()
    if json_columns:
        decode = RunStep._meta.get_field("arguments").from_db_value  # any JSONField: json.loads, None kept
        rows = [tuple(decode(v, None, None) if i in json_columns else v for i, v in enumerate(row)) for row in rows]
    return rows


_PLAIN_COLUMNS = {"CharField": str, "TextField": str, "PositiveIntegerField": int, "IntegerField": int,
                  "FloatField": float, "BooleanField": bool}


@lru_cache(maxsize=32)
def _insert_columns(model: Any, vendor: str) -> tuple[list[Any], list[Any]]:
    """A model's inserted columns and, for each, how a value is made ready for the database: a value
    of a plain column's own type goes as it is (what the field would make of it), any other value
    through the field (JSON, dates, foreign keys, conversions). On SQLite a JSON column's dict or
    list is ``json.dumps`` of it, what the field's own preparation comes to without an encoder."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    return fields, [_preparer(f, vendor) for f in fields]


class _CanonicalState(dict):
    """A final state with its canonical JSON text, taken once for its hash and, on SQLite, stored as
    the column's text (the same JSON: keys sorted, no spaces) instead of dumped a second time."""

    __slots__ = ("text", "hash")

    def __init__(self, state: dict[str, Any]) -> None:
        super().__init__(state)
        self.text = statekit.canonical_json(state)
        self.hash = hashlib.sha256(self.text.encode("utf-8")).hexdigest()  # statekit.state_hash's


@lru_cache(maxsize=128)
def _preparer(field: Any, vendor: str) -> Any:
    """How a value of ``field`` is made ready for the database (see :func:`_insert_columns`)."""
    if field.get_internal_type() == "JSONField" and vendor == "sqlite" and field.encoder is None:
        return lambda value, connection: json.dumps(value) if type(value) in (dict, list) else (
            value.text if type(value) is _CanonicalState else field.get_db_prep_save(value, connection))
    if field.get_internal_type() == "DateTimeField" and vendor == "sqlite" and settings.USE_TZ:
        # An aware datetime is the text of its naive value in the connection's zone (Django's
        # adapt_datetimefield_value, without the field's checks and conversions: ~2 % of a call).
        return lambda value, connection: str(value.astimezone(connection.timezone).replace(tzinfo=None)) if (
            type(value) is datetime and value.tzinfo is not None) else field.get_db_prep_save(value, connection)
    own = _PLAIN_COLUMNS.get(field.get_internal_type()) if not field.choices or field.get_internal_type() in (
        "CharField", "TextField") else None
    if own is None:
        return field.get_db_prep_save
    return lambda value, connection: value if type(value) is own else field.get_db_prep_save(value, connection)


def _count(sql_where: str, parameters: list[Any], using: str) -> int:
    """``SELECT COUNT(*)`` of the session table under a condition written with quoted names."""
    with connections[using].cursor() as cursor:
        _run(cursor, f"SELECT COUNT(*) FROM {connections[using].ops.quote_name(Run._meta.db_table)} "
                       f"WHERE {sql_where}", parameters)
        return int(cursor.fetchone()[0])


def _serialized(run_id: int, owner: Any, attempt: Any) -> Any:
    """``attempt(snapshot)`` until one commits (it returns None when another call moved the session
    on first); 409 once the session stayed busy past SCALEENV_SESSION_BUSY_SECONDS."""
    patience = settings.SCALEENV_SESSION_BUSY_SECONDS
    deadline = time.monotonic() + patience
    queue = _session_queues[run_id % len(_session_queues)]
    if not queue.acquire(timeout=patience):
        raise SessionBusy(f"session {run_id} is busy with other calls; retry")
    try:
        while True:
            result = attempt(_snapshot(run_id, owner))
            if result is not None:
                return result
            if time.monotonic() > deadline:
                raise SessionBusy(f"session {run_id} is busy with other calls; retry")
            time.sleep(random.uniform(0.001, 0.01))  # another process's call won; let it finish
    finally:
        queue.release()


def _close_if_due(run: Run) -> str | None:
    """Refuse a finished session; end one that idled too long or reached its step limit (the caller
    commits that ending, then refuses the call with the returned reason)."""
    if not run.is_open:
        raise SessionClosed(f"session {run.pk} is finished ({run.termination}); start a new one")
    idle = timedelta(seconds=settings.SCALEENV_SESSION_IDLE_SECONDS)
    if run.last_activity_at and timezone.now() - run.last_activity_at > idle:
        _finish_locked(run, Run.Termination.EXPIRED)
        return (f"session {run.pk} expired after {settings.SCALEENV_SESSION_IDLE_SECONDS} s without activity; "
                "start a new one")
    if run.step_count >= settings.SCALEENV_SESSION_MAX_STEPS:
        _finish_locked(run, Run.Termination.MAX_STEPS)
        return f"session {run.pk} reached {settings.SCALEENV_SESSION_MAX_STEPS} steps and is finished"
    return None


def _state(run: Run) -> _Kept:
    """The session's current state: kept by this process, or s0 plus the diffs of its successful
    calls."""
    kept = _states.get(run.pk, run.state_version)
    if kept is not None:
        return kept
    state = s0 = _spec(run.task).s0  # kept by this process per task (never changed in place: diffs apply by copy)
    diffs: list[dict[str, Any]] = []
    if run.state_version:  # a tool call has run
        for diff, in _values("successful diffs", lambda run_id, kind, outcome: RunStep.objects.filter(
                run_id=run_id, kind=kind, outcome=outcome).order_by("index").values_list("diff"),
                [run.pk, RunStep.Kind.TOOL_CALL, "success"], router.db_for_read(RunStep), json_columns=(0,)):
            if diff:
                diffs.append(diff)
                state = statekit.apply_diff_shared(state, diff)
    return _Kept(run.state_version, state if diffs else s0, run.ids_used, tuple(diffs))


def _append(run: Run, **fields: Any) -> RunStep:
    step = RunStep.objects.create(run_id=run.pk, index=run.step_count, **fields)
    run.step_count += 1
    return step


def _touch(run: Run, **extra: Any) -> None:
    Run.objects.filter(pk=run.pk).update(step_count=run.step_count, last_activity_at=timezone.now(), **extra)


def _parse_arguments(served: _Served, tool: ToolView, arguments: Any) -> tuple[dict[str, Any] | None, str | None]:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except (json.JSONDecodeError, RecursionError) as exc:
            return None, f"InvalidArguments: arguments are not valid JSON ({getattr(exc, 'msg', 'too deep')})"
        try:  # what the request's JSON parser refuses, refused inside a JSON string too (NaN, NUL, ...)
            check_value(arguments)
        except BadInput as exc:
            return None, f"InvalidArguments: {exc.detail}"
    if not isinstance(arguments, dict):
        return None, "InvalidArguments: arguments must be a JSON object"
    if len(json.dumps(arguments, default=str)) > settings.SCALEENV_SESSION_MAX_ARGUMENT_BYTES:
        return None, (f"InvalidArguments: arguments over {settings.SCALEENV_SESSION_MAX_ARGUMENT_BYTES} bytes "
                      "(SCALEENV_SESSION_MAX_ARGUMENT_BYTES)")
    errors = sorted(served.validator(tool).iter_errors(arguments),
                    key=lambda e: list(e.path))
    if errors:
        detail = "; ".join(f"{'/'.join(map(str, e.path)) or 'arguments'}: {e.message}" for e in errors[:3])
        return None, f"InvalidArguments: {detail[:1000]}"
    return arguments, None


def call_tool(run_id: int, owner: Any, name: Any, arguments: Any) -> dict[str, Any]:
    """Execute one tool call of the session; malformed calls come back as error observations."""
    return _serialized(run_id, owner, lambda run: _try_call(run, name, arguments))


def _try_call(run: Run, name: Any, arguments: Any) -> dict[str, Any] | None:
    """One tool call on the snapshot ``run``: executed in a sandbox leased to this request, then
    stored if the session has not moved on meanwhile (else None, and nothing is stored).

    The sandbox stays leased until the call is committed; only then is it marked as holding the
    session's new state (``holder``), so the session's next call in this process can skip the
    reset. A call that is not stored leaves the mark unset."""
    with ExitStack() as leases:
        served = _specs.get(run.task)
        stored_arguments = arguments
        if not isinstance(stored_arguments, (dict, list, str, int, float, bool)) and stored_arguments is not None:
            stored_arguments = str(stored_arguments)
        tool = served.tools.get(name) if isinstance(name, str) else None
        executed, diff, duration, held = False, {}, 0.0, None
        ids_used, version = run.ids_used, run.state_version
        if tool is None:
            result = {"outcome": "anticipated_rejection", "error_type": "UnknownTool",
                      "error": f"there is no tool named {str(name)[:80]!r}"}
        else:
            parsed, problem = _parse_arguments(served, tool, arguments)
            if problem:
                error_type, _, message = problem.partition(": ")
                result = {"outcome": "anticipated_rejection", "error_type": error_type, "error": message}
            else:
                stored_arguments = parsed
                holder = (run.pk, run.state_version)
                sandbox = leases.enter_context(sandbox_pool().lease(served.bundle, holder=holder))
                kept = _states.get(run.pk, run.state_version) if sandbox.holder == holder else None
                start_from = None
                if kept is None:  # the sandbox holds another state: it loads this one with the call
                    kept = _state(run)
                    # s0 (which the worker keeps after the first time, by task and content) and the diffs.
                    start_from = Resume(f"{run.task_id}:{run.task.content_hash}", served.spec.s0, kept.diffs,
                                        kept.ids_used)
                sandbox.holder = None  # until this call is stored
                result = sandbox.call(tool.name, parsed, start_from=start_from)
                executed, diff = True, result.get("diff") or {}
                duration = float(result.get("duration_ms") or 0.0)
                state, diffs = kept.state, kept.diffs
                if result["outcome"] == "success" and diff:
                    state, diffs = statekit.apply_diff_shared(state, diff), (*diffs, diff)
                ids_used, version = sandbox.ids_used, run.state_version + 1
                held = (sandbox, (run.pk, version), _Kept(version, state, ids_used, diffs))
        content, truncated = _capped(tool_message_content(result), settings.SCALEENV_SESSION_MAX_OBSERVATION_CHARS)
        arguments_text = json.dumps(stored_arguments, default=str)
        if len(arguments_text) > settings.SCALEENV_SESSION_MAX_ARGUMENT_BYTES:
            stored_arguments = {"truncated": _capped(arguments_text, settings.SCALEENV_SESSION_MAX_ARGUMENT_BYTES)[0]}
        step = _new_row(RunStep, kind=RunStep.Kind.TOOL_CALL, tool=str(name)[:200] if name is not None else "",
                        arguments=stored_arguments, outcome=result["outcome"], observation=content, diff=diff,
                        duration_ms=duration, executed=executed)
        failed = result["outcome"] != "success"
        if not _advance(run, [step], errors=int(failed), ids_used=ids_used, state_version=version):
            return None
        if held is not None:
            sandbox, holder, kept = held
            sandbox.holder = holder
            _states.put(run.pk, kept)
    return {"tool_call_id": f"call_{step.index}", "outcome": result["outcome"], "content": content, "error": failed,
            "truncated": truncated}


def send_message(run_id: int, owner: Any, content: str) -> dict[str, Any]:
    """The agent says something; the simulated user answers (or the agent ends with ###STOP###)."""
    # Either side may end the session with this message, scored under this process's lock for the
    # session (and for an LLM user, a transaction): ask the judge first. A message changes no
    # state, so this score's texts are the final ones.
    _ask_judge_first(run_id, owner, Run.Termination.USER_STOP)
    scripted = _serialized(run_id, owner, lambda run: _LLM_USER if run.user == "llm" else _try_message(run, content))
    if scripted is not _LLM_USER:
        return scripted
    with transaction.atomic():
        run = _locked(run_id, owner)
        closed = _close_if_due(run)
        if closed is None:
            said = _llm_message_locked(run, content)
            if isinstance(said, dict):  # the agent ended the session
                return said
    if closed is not None:
        raise SessionClosed(closed)
    return _llm_reply(run_id, owner, *said)


def _llm_message_locked(run: Run, content: str) -> dict[str, Any] | tuple[str, list[str], list[str]]:
    """The agent's message to an LLM user, stored under the lock; the reply is asked for after the
    transaction (a model may take seconds; no row, and on SQLite no database, stays locked meanwhile)."""
    text, _ = _capped(content, settings.SCALEENV_SESSION_MAX_MESSAGE_CHARS)
    heard = list(RunStep.objects.filter(run_id=run.pk, kind=RunStep.Kind.MESSAGE).order_by("index")
                 .values_list("content", flat=True))
    said = list(RunStep.objects.filter(run_id=run.pk, kind=RunStep.Kind.USER).order_by("index")
                .values_list("content", flat=True))
    _append(run, kind=RunStep.Kind.MESSAGE, content=text)
    run.agent_messages += 1
    _touch(run, agent_messages=run.agent_messages)
    if STOP in text:
        return {"user": None, "finished": True, **_finish_locked(run, Run.Termination.AGENT_STOP)}
    return text, said, heard


def _llm_reply(run_id: int, owner: Any, text: str, said: list[str], heard: list[str]) -> dict[str, Any]:
    from environments.llm import LLMError

    task = Run.objects.select_related("task", "task__domain").only(
        "id", "task__id", "task__content_hash", "task__domain__id", "task__domain__spec_hash",
        "task__domain__slug").get(pk=run_id)
    spec = _spec(task.task)
    failure = ""
    try:
        reply = _llm_user(spec, task.task_id, run_id, said, heard).respond(text)
    except LLMError as exc:
        failure, reply = f"the simulated user's model failed ({exc.outcome}): {exc}", ""
    with transaction.atomic():
        run = _locked(run_id, owner)
        if not run.is_open:  # finished by another request meanwhile
            raise SessionClosed(f"session {run.pk} is finished ({run.termination}); start a new one")
        if failure:  # as in rollouts: the episode ends as user_error, the reason in its breakdown
            result = _finish_locked(run, Run.Termination.USER_ERROR)
            breakdown = {**(result.get("breakdown") or {}), "failure": {"who": "user", "message": failure}}
            Run.objects.filter(pk=run.pk).update(breakdown=breakdown)
            return {"user": None, "finished": True, "error": failure, **result, "breakdown": breakdown}
        _append(run, kind=RunStep.Kind.USER, content=reply)
        _touch(run)
        if STOP in reply:
            return {"user": reply, "finished": True, **_finish_locked(run, Run.Termination.USER_STOP)}
        return {"user": reply, "finished": False}


_LLM_USER = object()  # the session's user is a model: its turn takes the locked path below


def _try_message(run: Run, content: str) -> dict[str, Any] | None:
    """One agent message and the scripted user's reply on the snapshot ``run``, stored if the
    session has not moved on meanwhile (else None, and nothing is stored). When either side says
    ###STOP###, the session is scored on the snapshot before the transaction and finished in it."""
    text, _ = _capped(content, settings.SCALEENV_SESSION_MAX_MESSAGE_CHARS)
    steps = [_new_row(RunStep, kind=RunStep.Kind.MESSAGE, content=text)]
    user, reply = None, None
    if STOP not in text:
        spec = _spec(run.task)
        if spec.script is None:
            reply = f"Thanks. {STOP}"
        else:  # the scripted user is deterministic: kept by this process, or rebuilt from the conversation
            user = _users.take(run.pk, run.agent_messages)
            if user is None:
                earlier = [content for content, in _values(
                    "earlier messages", lambda run_id, kind, before: RunStep.objects.filter(
                        run_id=run_id, kind=kind, index__lt=before).order_by("index").values_list("content"),
                    [run.pk, RunStep.Kind.MESSAGE, run.step_count], router.db_for_read(RunStep))]
                user = ScriptedUser.replay(spec.script, earlier)
            reply = user.respond(text)
        steps.append(_new_row(RunStep, kind=RunStep.Kind.USER, content=reply))
    ending = (Run.Termination.AGENT_STOP if STOP in text else
              Run.Termination.USER_STOP if reply is not None and STOP in reply else None)
    final = _final_score(run, ending, steps) if ending else {}
    if not _advance(run, steps, agent_messages=run.agent_messages + 1, **final):
        return None
    if ending:
        transaction.on_commit(lambda: _states.drop(run.pk))
        return {"user": reply, "finished": True,
                "reward": final["reward"], "breakdown": final["breakdown"], "termination": ending}
    if user is not None:
        _users.put(run.pk, run.agent_messages + 1, user)
    return {"user": reply, "finished": False}


def finish(run_id: int, owner: Any, termination: str = Run.Termination.AGENT_STOP) -> dict[str, Any]:
    """End the session and score it; finishing a finished session returns its result unchanged."""
    _ask_judge_first(run_id, owner, termination)
    with transaction.atomic():
        run = _locked(run_id, owner)
        if not run.is_open:
            return result_of(Run.objects.only("reward", "breakdown", "termination").get(pk=run.pk))
        return _finish_locked(run, termination)


def _ask_judge_first(run_id: int, owner: Any, termination: str) -> None:
    """With the LLM judge, score the session once before its lock is taken, so the model is asked
    (and the judge keeps its answers) while no row, and on SQLite no database, is locked; the score
    under the lock then asks no one, unless a call landed in between. An unrewarded ending
    (expired, max_steps, an error) is not judged at all (tasks/rollout/episode.score)."""
    if termination not in REWARDED or semantic_judge() is None:
        return
    run = (Run.objects.select_related("task", "task__domain")
           .filter(pk=run_id, owner=owner, agent="external", termination=Run.Termination.RUNNING).first())
    if run is not None:
        _final_score(run, termination)


def messages_of(run: Run, spec: TaskSpec | None = None) -> list[dict[str, Any]]:
    """The session's conversation in the OpenAI chat format, rebuilt from its steps."""
    return _conversation(run, spec)[0]


def _conversation(run: Run, spec: TaskSpec | None = None) -> tuple[list[dict[str, Any]], list[Any]]:
    """The conversation (as :func:`messages_of`) and the observations of the successful tool calls
    (parsed JSON where they are), from one read of the steps."""
    spec = spec or _spec(run.task)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt(spec)}]
    observations: list[Any] = []
    for index, kind, tool, arguments, observation, content, outcome in _values(
            "conversation", lambda run_id: RunStep.objects.filter(run_id=run_id).order_by("index").values_list(
                "index", "kind", "tool", "arguments", "observation", "content", "outcome"), [run.pk],
            router.db_for_read(RunStep), json_columns=(3,)):
        if kind == RunStep.Kind.TOOL_CALL:
            call_id = f"call_{index}"
            messages.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": call_id, "type": "function",
                 "function": {"name": tool, "arguments": json.dumps(arguments, default=str)}}]})
            messages.append({"role": "tool", "tool_call_id": call_id, "content": observation})
            if outcome == "success":
                try:
                    observations.append(json.loads(observation))
                except json.JSONDecodeError:
                    observations.append(observation)
        else:
            messages.append({"role": "user" if kind == RunStep.Kind.USER else "assistant", "content": content})
    return messages, observations


def _final_score(run: Run, termination: str, pending: list[RunStep] | None = None) -> dict[str, Any]:
    """The columns that finish the session as ``run`` stands plus its ``pending`` steps (messages
    not yet stored): its score, final state and conversation."""
    spec = _spec(run.task)
    state = _state(run).state
    messages, observations = _conversation(run, spec)
    for step in pending or []:
        messages.append({"role": "user" if step.kind == RunStep.Kind.USER else "assistant", "content": step.content})
    reward, breakdown = score(spec, state, messages, observations, termination, semantic_judge())
    finished_at = timezone.now()
    final_state = _CanonicalState(state)
    return {"termination": termination, "reward": reward, "breakdown": breakdown, "final_state": final_state,
            "final_hash": final_state.hash, "messages": messages,
            "seconds": round((finished_at - run.created_at).total_seconds(), 3)}


def _finish_locked(run: Run, termination: str) -> dict[str, Any]:
    """Score and close a locked, open session (inside the caller's transaction)."""
    final = _final_score(run, termination)
    updated = Run.objects.filter(pk=run.pk, termination=Run.Termination.RUNNING).update(
        step_count=run.step_count, last_activity_at=timezone.now(), **final)
    if not updated:  # already finished by another request: report what it recorded
        return result_of(Run.objects.only("reward", "breakdown", "termination").get(pk=run.pk))
    run.termination = termination
    transaction.on_commit(lambda: _states.drop(run.pk))
    return {"reward": final["reward"], "breakdown": final["breakdown"], "termination": termination}


def result_of(run: Run) -> dict[str, Any]:
    return {"reward": run.reward, "breakdown": run.breakdown, "termination": run.termination}


def agent_view(result: dict[str, Any]) -> dict[str, Any]:
    """What an agent may learn of its score: no expected values (they are the answer key)."""
    breakdown = result.get("breakdown") or {}
    failing = sorted({t["table"] for t in breakdown.get("failing_tables", [])})
    return {"reward": result.get("reward"), "termination": result.get("termination"),
            "breakdown": {"db_match": breakdown.get("db_match"), "communicate_ok": breakdown.get("communicate_ok"),
                          "refusal_ok": breakdown.get("refusal_ok"), "partial": breakdown.get("partial"),
                          "failing_tables": failing}}


def expire_idle_sessions(owner: Any = None) -> int:
    """Finish the sessions idle longer than SCALEENV_SESSION_IDLE_SECONDS (recorded as ``expired``)."""
    cutoff = timezone.now() - timedelta(seconds=settings.SCALEENV_SESSION_IDLE_SECONDS)
    idle = Run.objects.filter(agent="external", termination=Run.Termination.RUNNING, last_activity_at__lt=cutoff)
    if owner is not None:
        idle = idle.filter(owner=owner)
    expired = 0
    for run_id, owner_id in idle.values_list("pk", "owner_id"):
        with transaction.atomic():
            run = (Run.objects.select_for_update().select_related("task", "task__domain")
                   .filter(pk=run_id, termination=Run.Termination.RUNNING).first())
            if run is not None and run.last_activity_at and run.last_activity_at < cutoff:
                _finish_locked(run, Run.Termination.EXPIRED)
                expired += 1
    return expired
