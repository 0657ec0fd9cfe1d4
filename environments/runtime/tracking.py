"""Copy-on-write change tracking for the state document inside a sandbox worker.

Tables and rows are dict subclasses that record the original value of a row (or table) the first
time a call changes it. A read-only call then costs no copying at all, and a write call copies
only what it touched; the diff, the validation and the rollback work from those originals.
Used only when every column holds a scalar (no nested JSON a tool could change in place).
Stdlib only: imported by the worker before it hardens itself.
"""

from __future__ import annotations

from typing import Any

ABSENT = object()


class Tracker:
    __slots__ = ("rows", "tables")

    def __init__(self) -> None:
        self.rows: dict[tuple[str, Any], Any] = {}  # (table, pk) -> original row copy or ABSENT
        self.tables: dict[str, Any] = {}  # table -> original table copy (replaced or cleared) or ABSENT

    def clear(self) -> None:
        self.rows.clear()
        self.tables.clear()


class TrackedRow(dict):
    __slots__ = ("_tracker", "_key")

    def _touch(self) -> None:
        key = self._key
        rows = self._tracker.rows
        if key not in rows:
            rows[key] = dict(self)

    def __setitem__(self, k: Any, v: Any) -> None:
        self._touch()
        dict.__setitem__(self, k, v)

    def __delitem__(self, k: Any) -> None:
        self._touch()
        dict.__delitem__(self, k)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._touch()
        dict.update(self, *args, **kwargs)

    def pop(self, *args: Any) -> Any:
        self._touch()
        return dict.pop(self, *args)

    def popitem(self) -> Any:
        self._touch()
        return dict.popitem(self)

    def setdefault(self, k: Any, default: Any = None) -> Any:
        if k not in self:
            self._touch()
        return dict.setdefault(self, k, default)

    def clear(self) -> None:
        self._touch()
        dict.clear(self)

    def __ior__(self, other: Any) -> "TrackedRow":
        self._touch()
        dict.update(self, other)
        return self


class TrackedTable(dict):
    __slots__ = ("_tracker", "_name")

    def _touch(self, pk: Any) -> None:
        key = (self._name, pk)
        rows = self._tracker.rows
        if key not in rows:
            current = dict.get(self, pk, ABSENT)
            rows[key] = ABSENT if current is ABSENT else dict(current)

    def _touch_all(self) -> None:
        for pk in list(dict.keys(self)):
            self._touch(pk)

    def __setitem__(self, pk: Any, row: Any) -> None:
        self._touch(pk)
        dict.__setitem__(self, pk, row)

    def __delitem__(self, pk: Any) -> None:
        self._touch(pk)
        dict.__delitem__(self, pk)

    def pop(self, pk: Any, *default: Any) -> Any:
        if pk in self:
            self._touch(pk)
        return dict.pop(self, pk, *default)

    def popitem(self) -> Any:
        if self:
            self._touch(next(reversed(dict.keys(self))))
        return dict.popitem(self)

    def setdefault(self, pk: Any, default: Any = None) -> Any:
        if pk not in self:
            self._touch(pk)
        return dict.setdefault(self, pk, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for pk in dict(*args, **kwargs):
            self._touch(pk)
        dict.update(self, *args, **kwargs)

    def clear(self) -> None:
        self._touch_all()
        dict.clear(self)

    def __ior__(self, other: Any) -> "TrackedTable":
        self.update(other)
        return self


class TrackedState(dict):
    __slots__ = ("_tracker",)

    def _touch(self, name: Any) -> None:
        tracker = self._tracker
        if name in tracker.tables:
            return
        current = dict.get(self, name, ABSENT)
        if current is ABSENT or not isinstance(current, dict):
            tracker.tables[name] = ABSENT if current is ABSENT else current
            return
        # The table as it was when the call started: rows changed earlier in this call are taken
        # from their recorded originals.
        original = {}
        for pk, row in dict.items(current):
            recorded = tracker.rows.get((name, pk), row)
            if recorded is not ABSENT:
                original[pk] = dict(recorded)
        for (table, pk), recorded in tracker.rows.items():
            if table == name and pk not in original and recorded is not ABSENT and pk not in current:
                original[pk] = dict(recorded)
        tracker.tables[name] = original

    def __setitem__(self, name: Any, table: Any) -> None:
        self._touch(name)
        dict.__setitem__(self, name, table)

    def __delitem__(self, name: Any) -> None:
        self._touch(name)
        dict.__delitem__(self, name)

    def pop(self, name: Any, *default: Any) -> Any:
        if name in self:
            self._touch(name)
        return dict.pop(self, name, *default)

    def popitem(self) -> Any:
        if self:
            self._touch(next(reversed(dict.keys(self))))
        return dict.popitem(self)

    def setdefault(self, name: Any, default: Any = None) -> Any:
        if name not in self:
            self._touch(name)
        return dict.setdefault(self, name, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for name in dict(*args, **kwargs):
            self._touch(name)
        dict.update(self, *args, **kwargs)

    def clear(self) -> None:
        for name in list(dict.keys(self)):
            self._touch(name)
        dict.clear(self)

    def __ior__(self, other: Any) -> "TrackedState":
        self.update(other)
        return self


def wrap(state: dict[str, Any], tracker: Tracker) -> TrackedState:
    """A tracked copy of ``state`` (tables and rows copied shallowly)."""
    tracked = TrackedState()
    tracked._tracker = tracker
    for name, rows in state.items():
        dict.__setitem__(tracked, name, _wrap_table(name, rows, tracker))
    return tracked


def _wrap_table(name: str, rows: Any, tracker: Tracker) -> Any:
    if not isinstance(rows, dict):
        return rows
    table = TrackedTable()
    table._tracker, table._name = tracker, name
    for pk, row in rows.items():
        dict.__setitem__(table, pk, _wrap_row(name, pk, row, tracker))
    return table


def _wrap_row(name: str, pk: Any, row: Any, tracker: Tracker) -> Any:
    if not isinstance(row, dict):
        return row
    tracked = TrackedRow(row)
    tracked._tracker, tracked._key = tracker, (name, pk)
    return tracked


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


def changes(state: TrackedState, tracker: Tracker) -> dict[str, dict[str, Any]]:
    """The diff (same shape as statekit.diff_states) of everything touched since the last commit."""
    before: dict[str, dict[Any, Any]] = {}
    after: dict[str, dict[Any, Any]] = {}
    for name, original in tracker.tables.items():
        current = dict.get(state, name, ABSENT)
        before[name] = {} if original is ABSENT else {pk: r for pk, r in original.items()}
        after[name] = {} if current is ABSENT or not isinstance(current, dict) else {
            pk: _plain(r) for pk, r in dict.items(current)}
    for (name, pk), original in tracker.rows.items():
        if name in tracker.tables:
            continue
        table = dict.get(state, name, ABSENT)
        current = dict.get(table, pk, ABSENT) if isinstance(table, dict) else ABSENT
        if original is not ABSENT:
            before.setdefault(name, {})[pk] = original
        if current is not ABSENT:
            after.setdefault(name, {})[pk] = _plain(current)
    diff: dict[str, dict[str, Any]] = {}
    for name in sorted(set(before) | set(after), key=str):
        old, new = before.get(name, {}), after.get(name, {})
        added = {pk: new[pk] for pk in sorted(new.keys() - old.keys(), key=str)}
        removed = {pk: old[pk] for pk in sorted(old.keys() - new.keys(), key=str)}
        changed = {}
        for pk in sorted(old.keys() & new.keys(), key=str):
            if old[pk] != new[pk]:
                changed[pk] = {c: [old[pk].get(c), new[pk].get(c)] for c in sorted(set(old[pk]) | set(new[pk]), key=str)
                               if old[pk].get(c) != new[pk].get(c)}
        if added or removed or changed:
            diff[name] = {"added": added, "removed": removed, "changed": changed}
    return diff


def rollback(state: TrackedState, tracker: Tracker) -> None:
    """Put every touched row and table back as it was, and forget the changes."""
    for name, original in tracker.tables.items():
        if original is ABSENT:
            dict.pop(state, name, None)
        else:
            dict.__setitem__(state, name, _wrap_table(name, original, tracker))
    for (name, pk), original in tracker.rows.items():
        if name in tracker.tables:
            continue
        table = dict.get(state, name)
        if not isinstance(table, dict):
            continue
        if original is ABSENT:
            dict.pop(table, pk, None)
        else:
            dict.__setitem__(table, pk, _wrap_row(name, pk, original, tracker))
    tracker.clear()


def commit(state: TrackedState, tracker: Tracker) -> None:
    """Accept the changes: re-wrap new tables and rows so later calls are tracked too."""
    for name in tracker.tables:
        current = dict.get(state, name, ABSENT)
        if current is not ABSENT:
            dict.__setitem__(state, name, _wrap_table(name, current, tracker))
    for (name, pk) in tracker.rows:
        if name in tracker.tables:
            continue
        table = dict.get(state, name)
        if isinstance(table, dict) and pk in table:
            row = dict.__getitem__(table, pk)
            if not (isinstance(row, TrackedRow) and row._key == (name, pk)):
                dict.__setitem__(table, pk, _wrap_row(name, pk, row, tracker))
    tracker.clear()
