"""Reward by column policy: exempt ignored, exact equal, semantic fuzzy; rows aligned by content."""

from tasks.reward import compute_reward, semantic_match

SCHEMA = {"tables": {
    "owners": {"pk": "owner_id", "columns": {"owner_id": {"type": "string", "policy": "exempt"},
                                              "name": {"type": "string", "policy": "exact"}}},
    "notes": {"pk": "note_id", "columns": {
        "note_id": {"type": "string", "policy": "exempt"},
        "owner_id": {"type": "string", "policy": "exact", "fk": {"table": "owners", "column": "owner_id"}},
        "body": {"type": "text", "policy": "semantic"},
        "stars": {"type": "integer", "policy": "exact"},
        "memo": {"type": "string", "policy": "exempt", "nullable": True}}}}}
S0 = {"owners": {"o1": {"owner_id": "o1", "name": "Ada"}}, "notes": {}}
GOLD = {"owners": {"o1": {"owner_id": "o1", "name": "Ada"}, "o_gold": {"owner_id": "o_gold", "name": "Bo"}},
        "notes": {"n_gold": {"note_id": "n_gold", "owner_id": "o_gold", "body": "Great service, friendly staff",
                             "stars": 5, "memo": "x"}}}


def agent_state(**changes):
    state = {"owners": {"o1": {"owner_id": "o1", "name": "Ada"}, "o_mine": {"owner_id": "o_mine", "name": "Bo"}},
             "notes": {"n_mine": {"note_id": "n_mine", "owner_id": "o_mine", "body": "great service friendly staff!",
                                  "stars": 5, "memo": "something else"}}}
    state["notes"]["n_mine"].update(changes)
    return state


def test_new_rows_align_by_content_with_exempt_ids_and_foreign_keys_through_the_alignment():
    result = compute_reward(agent_state(), GOLD, S0, SCHEMA)
    assert result.reward == 1.0 and result.db_match and result.partial == 1.0


def test_an_exact_column_that_differs_gives_zero_with_the_reason():
    result = compute_reward(agent_state(stars=4), GOLD, S0, SCHEMA)
    assert result.reward == 0.0
    assert any("notes" in r for r in result.reasons())
    assert 0 < result.partial < 1


def test_semantic_columns_tolerate_wording_but_not_other_meanings():
    assert semantic_match("Great service, friendly staff", "great service friendly staff!")
    assert not semantic_match("Great service, friendly staff", "Terrible, would not recommend")
    assert compute_reward(agent_state(body="Terrible, would not recommend"), GOLD, S0, SCHEMA).reward == 0.0


def test_missing_and_extra_rows_fail():
    missing = agent_state()
    del missing["notes"]["n_mine"]
    assert compute_reward(missing, GOLD, S0, SCHEMA).tables[1].missing == ["n_gold"]
    extra = agent_state()
    extra["notes"]["n_two"] = dict(extra["notes"]["n_mine"], note_id="n_two")
    result = compute_reward(extra, GOLD, S0, SCHEMA)
    assert result.reward == 0.0 and result.tables[1].extra == ["n_two"]


def test_collateral_damage_in_an_untouched_table_fails():
    damaged = agent_state()
    damaged["owners"]["o1"]["name"] = "Eve"
    result = compute_reward(damaged, GOLD, S0, SCHEMA)
    assert result.reward == 0.0
    assert result.tables[0].mismatches[0]["column"] == "name"


def test_read_only_tasks_need_the_information_communicated():
    required = ["42.5", "confirmed"]
    told = compute_reward(S0, S0, S0, SCHEMA, required, ["The total is 42.5 and it is Confirmed."])
    silent = compute_reward(S0, S0, S0, SCHEMA, required, ["Done."])
    assert told.reward == 1.0 and silent.reward == 0.0
    assert silent.communicate == [{"info": "42.5", "met": False}, {"info": "confirmed", "met": False}]
