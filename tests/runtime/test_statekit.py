import pytest

from environments.runtime import statekit
from tests.conftest import ITEMS_SCHEMA


def test_it_hashes_canonically_regardless_of_key_order():
    a = {"t": {"1": {"x": 1, "y": "é"}}}
    b = {"t": {"1": {"y": "é", "x": 1}}}
    assert statekit.state_hash(a) == statekit.state_hash(b)
    assert statekit.state_hash(a) != statekit.state_hash({"t": {"1": {"x": 2, "y": "é"}}})


def test_it_diffs_added_removed_and_changed_rows_and_applies_them_back():
    before = {"t": {"1": {"a": 1, "b": 2}, "2": {"a": 5}}, "u": {}}
    after = {"t": {"1": {"a": 1, "b": 3}, "3": {"a": 9}}, "u": {}}
    diff = statekit.diff_states(before, after)
    assert diff == {"t": {"added": {"3": {"a": 9}}, "removed": {"2": {"a": 5}}, "changed": {"1": {"b": [2, 3]}}}}
    assert statekit.apply_diff(before, diff) == after
    assert statekit.diff_is_empty(statekit.diff_states(after, after))


def test_a_shared_apply_gives_the_same_state_and_leaves_the_original_and_untouched_parts_alone():
    before = {"t": {"1": {"a": 1, "b": [2]}, "2": {"a": 5}, "4": {"a": 7}}, "u": {"x": {"k": 1}}}
    after = {"t": {"1": {"a": 1, "b": [3]}, "3": {"a": 9}, "4": {"a": 7}}, "u": {"x": {"k": 1}}}
    snapshot = statekit.copy_state(before)
    diff = statekit.diff_states(before, after)
    shared = statekit.apply_diff_shared(before, diff)
    assert shared == after == statekit.apply_diff(before, diff)
    assert before == snapshot  # the original is unchanged
    assert shared["u"] is before["u"] and shared["t"]["4"] is before["t"]["4"]  # untouched parts are shared
    assert shared["t"]["1"] is not before["t"]["1"]  # a changed row is a new row


def test_it_reports_type_required_and_foreign_key_problems():
    state = {"items": {"a": {"item_id": "a", "name": 5, "qty": None, "owner_id": "ghost"}}, "owners": {}}
    problems = statekit.validate_rows(ITEMS_SCHEMA, state)
    assert any("name=5 is not a valid string" in p for p in problems)
    assert any("qty is required" in p for p in problems)
    assert any("references a missing owners row" in p for p in problems)


def test_it_flags_rows_left_pointing_at_a_removed_parent():
    before = {"items": {"a": {"item_id": "a", "name": "n", "qty": 1, "owner_id": "o"}}, "owners": {"o": {"owner_id": "o"}}}
    after = {"items": before["items"], "owners": {}}
    problems = statekit.validate_after_write(ITEMS_SCHEMA, after, statekit.diff_states(before, after))
    assert problems and "references a removed owners row" in problems[0]


def test_it_resolves_references_to_earlier_outputs():
    outputs = [{"items": [{"id": "x1"}]}, {"n": 2}]
    assert statekit.resolve_refs({"a": {"$ref": [0, "items.0.id"]}, "b": [{"$ref": [1, "n"]}]}, outputs) == {"a": "x1", "b": [2]}


def test_the_context_is_deterministic_after_reset():
    ctx = statekit.ToolContext("2026-03-02T09:00:00Z", 42)
    first = [ctx.new_id("x") for _ in range(3)]
    ctx.reset()
    assert [ctx.new_id("x") for _ in range(3)] == first
    assert ctx.now_iso() == "2026-03-02T09:00:00Z"


def test_selections_pick_records_by_what_they_are_not_by_position():
    outputs = [{"items": [{"id": "a", "at": "2026-03-10T09:00:00Z", "amount": 10.0, "status": "open"},
                          {"id": "b", "at": "2026-03-12T09:00:00Z", "amount": 20.5, "status": "paid"},
                          {"id": "c", "at": "2026-03-10T14:30:00Z", "amount": 7.25, "status": "open"}]}]
    pick = {"$pick": [0, "items", {"at": "2026-03-10T09:00:00+00:00"}], "$get": "id"}  # the same instant
    assert statekit.resolve_refs({"x": pick}, outputs) == {"x": "a"}
    on_day = {"$all": [0, "items", {"at": {"$on": "2026-03-10"}}], "$get": "id"}
    assert statekit.resolve_refs(on_day, outputs) == ["a", "c"]
    nested = {"$pick": [0, "items", {"id": {"$in": on_day}, "amount": {"$ne": 10.0}}], "$get": "id"}
    assert statekit.resolve_refs(nested, outputs) == "c"
    total = {"$sum": [0, "items", {"status": {"$in": ["open"]}}], "$get": "amount"}
    assert statekit.resolve_refs(total, outputs) == 17.25
    assert statekit.resolve_refs({"$max": [0, "items", {}], "$get": "amount"}, outputs) == 20.5


def test_a_selection_that_matches_no_row_or_several_is_a_clear_error():
    outputs = [{"items": [{"id": "a", "day": "x"}, {"id": "b", "day": "x"}]}]
    with pytest.raises(KeyError, match="2 rows match"):
        statekit.resolve_refs({"$pick": [0, "items", {"day": "x"}], "$get": "id"}, outputs)
    with pytest.raises(KeyError, match="0 rows match"):
        statekit.resolve_refs({"$pick": [0, "items", {"day": "y"}], "$get": "id"}, outputs)
    with pytest.raises(KeyError, match="refers to step 3"):
        statekit.resolve_refs({"$pick": [3, "items", {}], "$get": "id"}, outputs)
