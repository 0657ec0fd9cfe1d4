"""The sandboxed executor, against real worker processes."""

import copy
from dataclasses import replace

import pytest

from environments.runtime.executor import EnvironmentBundle, Resume, Sandbox, SandboxUnavailable
from tests.conftest import items_bundle

HOSTILE = '''
def spin(db, ctx):
    while True:
        pass

def hog(db, ctx):
    blocks = []
    while True:
        blocks.append(bytearray(64 * 1024 * 1024))

def deep(db, ctx, n=0):
    return deep(db, ctx, n + 1)

def flood(db, ctx):
    for _ in range(200000):
        print("x" * 100)
    return "done"

def huge(db, ctx):
    return "y" * (2 * 1024 * 1024)

def break_fk(db, ctx):
    db["items"]["b"] = {"item_id": "b", "name": "x", "qty": 1, "owner_id": "nobody"}
    return "ok"

def bad_return(db, ctx):
    return {1, 2}
'''
HOSTILE_NAMES = ("spin", "hog", "deep", "flood", "huge", "break_fk", "bad_return")


@pytest.fixture
def hostile(config):
    with Sandbox(items_bundle(HOSTILE, HOSTILE_NAMES), config) as sandbox:
        yield sandbox


def test_it_classifies_success_rejection_and_undeclared_errors(items_sandbox):
    ok = items_sandbox.call("add_item", {"name": "pear", "qty": 2})
    assert ok["outcome"] == "success"
    added = ok["diff"]["items"]["added"]
    assert list(added.values())[0]["name"] == "pear"
    rejected = items_sandbox.call("get_item", {"item_id": "nope"})
    assert (rejected["outcome"], rejected["error_type"]) == ("anticipated_rejection", "KeyError")
    assert rejected["error"] == "no item nope"
    failure = items_sandbox.call("take", {"item_id": "a", "qty": "3"})  # str - int: a TypeError inside the tool
    assert (failure["outcome"], failure["error_type"]) == ("unexpected_failure", "TypeError")


def test_a_failed_call_leaves_the_state_as_it_was(items_sandbox):
    before, before_hash = items_sandbox.get_state()
    items_sandbox.call("take", {"item_id": "a", "qty": "x"})
    after, after_hash = items_sandbox.get_state()
    assert after == before and after_hash == before_hash


def test_unknown_tools_and_bad_arguments_are_clear_errors(items_sandbox):
    unknown = items_sandbox.call("__import__", {})
    assert unknown["error_type"] == "UnknownTool"
    missing = items_sandbox.call("get_item", {})
    assert (missing["outcome"], missing["error_type"]) == ("anticipated_rejection", "InvalidArguments")
    not_object = items_sandbox.call("get_item", ["a"])
    assert not_object["error_type"] == "InvalidArguments"


def test_an_infinite_loop_costs_one_unexpected_failure_and_nothing_else(hostile):
    hostile.call("add_item", {"name": "kept", "qty": 1})
    state_before, hash_before = hostile.get_state()
    pid = hostile.worker_pid
    result = hostile.call("spin", {})
    assert (result["outcome"], result["error_type"]) == ("unexpected_failure", "Timeout")
    assert hostile.worker_pid != pid  # killed and replaced
    state_after, hash_after = hostile.get_state()
    assert hash_after == hash_before  # the session's state was rebuilt on the new worker
    assert hostile.call("get_item", {"item_id": "a"})["outcome"] == "success"


def test_a_recovered_session_keeps_its_state_and_its_id_sequence(config):
    with Sandbox(items_bundle(HOSTILE, HOSTILE_NAMES), config) as sandbox:
        first = sandbox.call("add_item", {"name": "one", "qty": 1})["value"]["item_id"]
        sandbox.call("add_item", {"name": "bad", "qty": -1})  # rejected: journal keeps successes only
        assert sandbox.call("spin", {})["error_type"] == "Timeout"
        second = sandbox.call("add_item", {"name": "two", "qty": 1})["value"]["item_id"]
        state, _hash = sandbox.get_state()
    with Sandbox(items_bundle(), config) as clean:
        expected = [clean.call("add_item", {"name": n, "qty": 1})["value"]["item_id"] for n in ("one", "two")]
    assert [first, second] == expected
    assert {first, second} <= set(state["items"])


def test_a_reset_with_ids_used_continues_the_id_sequence_as_set_ids_used_does(items_sandbox):
    """A session resumed on another worker: one reset carrying the count of ids used gives the
    same next id as a reset followed by set_ids_used, and as the episode played on one worker."""
    first = items_sandbox.call("add_item", {"name": "one", "qty": 1})["value"]["item_id"]
    played_on = items_sandbox.call("add_item", {"name": "two", "qty": 1})["value"]["item_id"]
    state = items_sandbox.get_state()[0]
    items_sandbox.reset(None)
    items_sandbox.call("add_item", {"name": "one", "qty": 1})
    used = items_sandbox.ids_used
    after_first = {k: v for k, v in state["items"].items() if k != played_on}
    items_sandbox.reset({**state, "items": after_first}, ids_used=used)
    assert items_sandbox.ids_used == used
    in_one_trip = items_sandbox.call("add_item", {"name": "two", "qty": 1})["value"]["item_id"]
    items_sandbox.reset({**state, "items": after_first})
    items_sandbox.set_ids_used(used)
    in_two_trips = items_sandbox.call("add_item", {"name": "two", "qty": 1})["value"]["item_id"]
    assert in_one_trip == in_two_trips == played_on != first
    # The same again with the state sent along with the call itself.
    items_sandbox.reset(None)
    with_the_call = items_sandbox.call("add_item", {"name": "two", "qty": 1},
                                       start_from=({**state, "items": after_first}, used))
    assert with_the_call["value"]["item_id"] == played_on and items_sandbox.ids_used == used + 1
    assert items_sandbox.get_state()[0] == state  # the state loaded, then the call applied


def test_a_resumed_session_sends_its_base_once_then_only_the_diffs(items_sandbox):
    """A session resumed from a base the worker keeps (a task's s0) plus its diffs reaches the same
    state and id sequence as one played on this worker; the base crosses the pipe only the first
    time, and a worker that does not hold it (a wrong mirror, a new worker) gets it again."""
    s0 = items_sandbox.get_state()[0]
    one = items_sandbox.call("add_item", {"name": "one", "qty": 1})
    two = items_sandbox.call("add_item", {"name": "two", "qty": 2})
    played, used_after_one = items_sandbox.get_state()[0], None
    items_sandbox.reset(None)
    items_sandbox.call("add_item", {"name": "one", "qty": 1})
    used_after_one = items_sandbox.ids_used

    sent = []
    real_send = items_sandbox._worker.send
    items_sandbox._worker.send = lambda message: sent.append(copy.deepcopy(message)) or real_send(message)
    resume = Resume("task-1:hash", s0, (one["diff"],), used_after_one)
    for attempt in range(3):
        items_sandbox.reset(None)
        again = items_sandbox.call("add_item", {"name": "two", "qty": 2}, start_from=resume)
        assert again["value"] == two["value"] and items_sandbox.get_state()[0] == played, attempt
    calls = [m for m in sent if m["op"] == "call"]
    assert ["state" in m["start_from"] for m in calls] == [True, False, False]
    assert calls[1]["start_from"]["diffs"] == [one["diff"]]

    items_sandbox._worker.bases["task-2:hash"] = None  # the parent wrongly believes the worker holds it
    sent.clear()
    other = items_sandbox.call("add_item", {"name": "two", "qty": 2},
                               start_from=Resume("task-2:hash", s0, (one["diff"],), used_after_one))
    assert other["value"] == two["value"] and items_sandbox.get_state()[0] == played
    assert ["state" in m["start_from"] for m in sent if m["op"] == "call"] == [False, True]


def test_unbounded_allocation_and_recursion_cost_one_failure(hostile):
    hog = hostile.call("hog", {}, timeout=20)  # a generous deadline: RLIMIT_AS must stop it first
    assert (hog["outcome"], hog["error_type"]) == ("unexpected_failure", "MemoryError")
    deep = hostile.call("deep", {})
    assert (deep["outcome"], deep["error_type"]) == ("unexpected_failure", "RecursionError")
    assert hostile.call("get_item", {"item_id": "a"})["outcome"] == "success"


def test_a_crashing_worker_is_replaced(config):
    with Sandbox(items_bundle(), replace(config, probes=True)) as sandbox:
        pid = sandbox.worker_pid
        lost = sandbox.probe("import os\nos.kill(os.getpid(), 9)")
        assert lost["lost"] == "WorkerCrashed"
        assert sandbox.worker_pid != pid
        assert sandbox.call("get_item", {"item_id": "a"})["outcome"] == "success"


def test_stdout_is_captured_and_capped(hostile):
    result = hostile.call("flood", {}, timeout=10)
    assert result["outcome"] == "success" and result["stdout_truncated"] is True
    assert len(result["stdout"]) == 64 * 1024


def test_an_oversized_response_recycles_the_worker(hostile):
    pid = hostile.worker_pid
    result = hostile.call("huge", {})
    assert (result["outcome"], result["error_type"]) == ("unexpected_failure", "OversizedResponse")
    assert hostile.worker_pid != pid


def test_writes_that_break_the_schema_are_rejected_and_undone(hostile):
    result = hostile.call("break_fk", {})
    assert (result["outcome"], result["error_type"]) == ("unexpected_failure", "InconsistentState")
    assert "references a missing owners row" in result["error"]
    assert "b" not in hostile.get_state()[0]["items"]


def test_non_json_return_values_are_failures(hostile):
    result = hostile.call("bad_return", {})
    assert (result["outcome"], result["error_type"]) == ("unexpected_failure", "BadReturnValue")


def test_run_sequence_feeds_outputs_forward_and_replays_deterministically(items_sandbox):
    calls = [{"tool": "add_item", "args": {"name": "fig", "qty": 4}},
             {"tool": "get_item", "args": {"item_id": {"$ref": [0, "item_id"]}}},
             {"tool": "take", "args": {"item_id": {"$ref": [0, "item_id"]}, "qty": 1}}]
    first = items_sandbox.run_sequence(calls)
    second = items_sandbox.run_sequence(calls)
    assert [r["outcome"] for r in first["results"]] == ["success"] * 3
    assert first["results"][1]["value"]["name"] == "fig"
    assert first["results"][2]["value"]["qty"] == 3
    assert first["state_hash"] == second["state_hash"]


def test_run_sequence_stops_at_the_first_failure_and_reports_bad_references(items_sandbox):
    run = items_sandbox.run_sequence([{"tool": "get_item", "args": {"item_id": "zz"}},
                                      {"tool": "get_item", "args": {"item_id": "a"}}])
    assert [r["outcome"] for r in run["results"]] == ["anticipated_rejection", "skipped"]
    bad = items_sandbox.run_sequence([{"tool": "get_item", "args": {"item_id": {"$ref": [3, "x"]}}}])
    assert bad["results"][0]["error_type"] == "BadReference"


def test_run_cases_isolates_a_hanging_case(hostile):
    results = hostile.run_cases([
        {"tool": "get_item", "args": {"item_id": "a"}},
        {"tool": "spin", "args": {}},
        {"tool": "add_item", "args": {"name": "z", "qty": 1}, "state": {"items": {}, "owners": {}}},
    ])
    assert [r["outcome"] for r in results] == ["success", "unexpected_failure", "success"]
    assert results[1]["error_type"] == "Timeout"


def test_a_non_null_harden_error_makes_the_parent_refuse_the_worker(config):
    with pytest.raises(SandboxUnavailable, match="refused"):
        Sandbox(EnvironmentBundle(tools={}, schema={"tables": {}}, state={}),
                replace(config, fake_harden_error="simulated failure", selftest=False))


def test_strict_mode_fails_closed_when_landlock_is_too_old(config):
    with pytest.raises(SandboxUnavailable, match="Landlock ABI 3"):
        Sandbox(EnvironmentBundle(tools={}, schema={"tables": {}}, state={}),
                replace(config, mode="strict", simulate_landlock_abi=3, selftest=False))


def test_auto_mode_runs_degraded_and_says_what_is_missing(config):
    with Sandbox(items_bundle(), replace(config, mode="auto", simulate_landlock_abi=3, selftest=False)) as sandbox:
        assert any(m.startswith("landlock") for m in sandbox.missing_layers)
        assert sandbox.call("get_item", {"item_id": "a"})["outcome"] == "success"


def test_pipelined_calls_return_in_order(items_sandbox):
    results = items_sandbox.call_pipelined([("get_item", {"item_id": "a"}), ("get_item", {"item_id": "no"})] * 100)
    assert [r["outcome"] for r in results[:2]] == ["success", "anticipated_rejection"]
    assert len(results) == 200


def test_workers_run_inside_bubblewrap_when_it_is_installed(config):
    import shutil

    if not shutil.which("bwrap"):
        pytest.skip("bubblewrap is not installed (optional tier)")
    with Sandbox(items_bundle(), replace(config, probes=True)) as sandbox:
        assert "bwrap" in sandbox.layers
        # A fresh mount namespace: the host's home directories are not even visible.
        assert sandbox.probe("import os\nresult = os.path.exists('/home') or os.path.exists('/etc/passwd')")["result"] is False


def test_the_pool_keeps_one_worker_per_environment_version(config):
    from environments.runtime.executor import SandboxPool

    pool = SandboxPool(config, size=2)
    try:
        a = pool.get(items_bundle())
        assert pool.get(items_bundle()) is a  # same version: same worker
        b = pool.get(items_bundle(HOSTILE, HOSTILE_NAMES))
        assert b is not a
        c = pool.get(items_bundle("\ndef extra(db, ctx):\n    return 1\n", ("extra",)))
        assert a._worker.closed and not b._worker.closed and not c._worker.closed  # least recently used went
    finally:
        pool.close()


def test_leases_never_share_a_sandbox_between_threads_and_keep_an_lru_of_idle_ones(config):
    import threading

    from environments.runtime.executor import SandboxPool
    from tests.conftest import items_bundle

    pool = SandboxPool(config, size=2)
    bundle = items_bundle()
    held: list[int] = []
    barrier = threading.Barrier(3)

    def worker() -> None:
        with pool.lease(bundle) as sandbox:
            held.append(id(sandbox))
            barrier.wait(timeout=30)  # all three hold a lease at once
            sandbox.reset({"items": {}, "owners": {}})
            assert sandbox.call("add_item", {"name": "x", "qty": 1})["outcome"] == "success"

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len(set(held)) == 3  # three callers at once: three sandboxes, none shared
        assert pool.idle_count == 2  # only `size` idle ones are kept
        with pool.lease(bundle) as again:
            assert id(again) in held  # reused, not started anew
    finally:
        pool.close()


def test_a_bucket_emptied_by_a_lease_never_breaks_a_later_eviction(config):
    """Found under runserver's many threads: a lease took the last idle sandbox of one environment,
    then two others were given back past the pool's size; eviction met the empty bucket (500s)."""
    from environments.runtime.executor import SandboxPool
    from tests.conftest import items_bundle

    pool = SandboxPool(config, size=1)
    first, second, third = items_bundle(), items_bundle("\n# two"), items_bundle("\n# three")
    try:
        with pool.lease(first):
            pass  # one idle sandbox of the first environment
        with pool.lease(first), pool.lease(second), pool.lease(third):
            pass  # given back in turn: third, second, first; only `size` stay idle
        assert pool.idle_count == 1
        with pool.lease(first) as again:
            assert again.call("get_item", {"item_id": "a"})["outcome"] == "success"
    finally:
        pool.close()


def test_a_lease_prefers_the_sandbox_holding_the_callers_state_and_clears_anyone_elses_mark(config):
    from environments.runtime.executor import SandboxPool
    from tests.conftest import items_bundle

    pool = SandboxPool(config, size=4)
    bundle = items_bundle()
    try:
        with pool.lease(bundle) as first, pool.lease(bundle) as second:
            first.holder, second.holder = ("session", 1), ("session", 2)
        with pool.lease(bundle, holder=("session", 1)) as again:
            assert again is first and again.holder == ("session", 1)
        with pool.lease(bundle, holder=("session", 3)) as other:
            assert other.holder is None  # a sandbox holding someone else's state is not theirs to trust
        with pool.lease(bundle) as plain:
            assert plain.holder is None
            plain.holder = ("session", 4)
            plain.reset({"items": {}, "owners": {}})
            assert plain.holder is None  # a reset replaces whatever state it held
    finally:
        pool.close()
