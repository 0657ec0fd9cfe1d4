"""Copy-on-write tracking gives the same diff as a full snapshot, and rolls back exactly."""

import json
import random

import pytest

from environments.runtime import statekit, tracking

BASE = {"t": {f"r{i}": {"id": f"r{i}", "n": i, "s": "x"} for i in range(6)}, "u": {"a": {"id": "a", "n": 1}}}


def mutate(db, rng):
    op = rng.randrange(10)
    t = db["t"]
    if op == 0:
        t[f"new{rng.randrange(3)}"] = {"id": "new", "n": 0, "s": "y"}
    elif op == 1 and t:
        del t[sorted(t)[0]]
    elif op == 2 and t:
        t[sorted(t)[-1]]["n"] += 1
    elif op == 3 and t:
        t[sorted(t)[0]].update({"s": "z", "n": 99})
    elif op == 4:
        t.pop("r3", None)
    elif op == 5:
        db["u"] = {"b": {"id": "b", "n": 2}}
    elif op == 6 and t:
        row = t[sorted(t)[0]]
        row.pop("s", None)
    elif op == 7:
        t.setdefault("r9", {"id": "r9", "n": 9, "s": "q"})
    elif op == 8:
        if "a" in db["u"]:
            db["u"]["a"]["n"] = 5
    else:
        t.clear()


@pytest.mark.parametrize("seed", range(40))
def test_changes_equal_a_full_snapshot_diff(seed):
    rng = random.Random(seed)
    tracker = tracking.Tracker()
    state = tracking.wrap(BASE, tracker)
    for _call in range(3):
        before = json.loads(json.dumps(state))
        for _ in range(rng.randint(1, 4)):
            mutate(state, rng)
        expected = statekit.diff_states(before, json.loads(json.dumps(state)))
        assert tracking.changes(state, tracker) == expected
        tracking.commit(state, tracker)


@pytest.mark.parametrize("seed", range(20))
def test_rollback_restores_the_state_exactly(seed):
    rng = random.Random(seed)
    tracker = tracking.Tracker()
    state = tracking.wrap(BASE, tracker)
    before = json.loads(json.dumps(state))
    for _ in range(5):
        mutate(state, rng)
    tracking.rollback(state, tracker)
    assert json.loads(json.dumps(state)) == before
    mutate(state, rng)  # still tracked after a rollback
    assert tracker.rows or tracker.tables


def test_reads_record_nothing():
    tracker = tracking.Tracker()
    state = tracking.wrap(BASE, tracker)
    _ = [dict(r) for r in state["t"].values()], state["u"].get("a"), list(state)
    assert not tracker.rows and not tracker.tables
