"""The reward is strict where it should be and fair where meaning is equal (docs/decisions.md, Reward)."""

import copy

from tasks.reward import answer_checks, compute_reward, refusal_check, same_meaning

SCHEMA = {"tables": {
    "owners": {"pk": "owner_id", "columns": {
        "owner_id": {"type": "string", "policy": "exempt"},
        "name": {"type": "string", "policy": "exact"},
        "city": {"type": "string", "policy": "exact", "nullable": True}}},
    "notes": {"pk": "note_id", "columns": {
        "note_id": {"type": "string", "policy": "exempt"},
        "owner_id": {"type": "string", "policy": "exact", "fk": {"table": "owners", "column": "owner_id"}},
        "body": {"type": "text", "policy": "semantic"},
        "stars": {"type": "integer", "policy": "exact"},
        "due_at": {"type": "datetime", "policy": "exact"},
        "created_at": {"type": "datetime", "policy": "exempt"}}}}}
S0 = {"owners": {"o1": {"owner_id": "o1", "name": "Ada", "city": "Porto"}}, "notes": {}}
GOLD = {"owners": {"o1": {"owner_id": "o1", "name": "Ada", "city": "Porto"},
                   "o_gold": {"owner_id": "o_gold", "name": "Bo", "city": None}},
        "notes": {"n_gold": {"note_id": "n_gold", "owner_id": "o_gold", "body": "Priority customer, call before noon",
                             "stars": 5, "due_at": "2026-03-10T09:00:00Z", "created_at": "2026-03-02T09:00:00Z"}}}


def agent_state(**changes):
    state = {"owners": {"o1": {"owner_id": "o1", "name": "Ada", "city": "Porto"},
                        "o_mine": {"owner_id": "o_mine", "name": "Bo", "city": None}},
             "notes": {"n_mine": {"note_id": "n_mine", "owner_id": "o_mine", "body": "priority customer, call before noon!",
                                  "stars": 5.0, "due_at": "2026-03-10T09:00:00+00:00",
                                  "created_at": "2026-03-02T10:11:12Z"}}}
    state["notes"]["n_mine"].update(changes)
    return state


def test_new_rows_align_by_content_ids_and_stamps_exempt_foreign_keys_through_the_alignment():
    result = compute_reward(agent_state(), GOLD, S0, SCHEMA)
    assert result.reward == 1.0 and result.db_match and result.partial == 1.0


def test_equal_meaning_passes_instants_as_instants_and_numbers_by_value():
    assert same_meaning("2026-03-10T09:00:00Z", "2026-03-10T09:00:00+00:00", "datetime")
    assert same_meaning("2026-03-10T09:00:00Z", "2026-03-10T11:00:00+02:00", "datetime")
    assert not same_meaning("2026-03-10T09:00:00Z", "2026-03-10T09:00:00+02:00", "datetime")
    assert same_meaning(2, 2.0) and not same_meaning(2, 2.5)
    assert not same_meaning("confirmed", "Confirmed")  # enums keep their declared spelling
    assert compute_reward(agent_state(due_at="2026-03-10T10:00:00+01:00"), GOLD, S0, SCHEMA).reward == 1.0
    assert compute_reward(agent_state(due_at="2026-03-10T10:00:00Z"), GOLD, S0, SCHEMA).reward == 0.0


def test_an_exact_column_that_differs_gives_zero_with_the_reason():
    result = compute_reward(agent_state(stars=4), GOLD, S0, SCHEMA)
    assert result.reward == 0.0
    assert any("notes" in r and "stars" in r for r in result.reasons())
    assert 0 < result.partial < 1


def test_free_text_passes_a_paraphrase_and_fails_a_negation():
    paraphrase = agent_state(body="Call this priority customer before noon")
    negation = agent_state(body="Not a priority customer, call before noon")
    contradiction = agent_state(body="Priority customer, call after noon")
    assert compute_reward(paraphrase, GOLD, S0, SCHEMA).reward == 1.0
    assert compute_reward(negation, GOLD, S0, SCHEMA).reward == 0.0
    assert compute_reward(contradiction, GOLD, S0, SCHEMA).reward == 0.0


def test_an_unrequested_edit_of_an_existing_row_fails_whatever_the_columns_policy():
    edited = agent_state()
    edited["owners"]["o1"]["city"] = "Lisbon"  # an optional column the task never mentions
    result = compute_reward(edited, GOLD, S0, SCHEMA)
    assert result.reward == 0.0
    mismatch = result.tables[0].mismatches[0]
    assert (mismatch["column"], mismatch["why"]) == ("city", "changed without being asked")


def test_an_untouched_row_passes_and_a_value_that_is_equal_but_of_another_type_is_still_compared():
    flags = {"tables": {"owners": {"pk": "owner_id", "columns": {
        "owner_id": {"type": "string", "policy": "exempt"}, "vip": {"type": "boolean", "policy": "exact"},
        "stars": {"type": "integer", "policy": "exact"}}}}}
    s0 = {"owners": {"o1": {"owner_id": "o1", "vip": True, "stars": 3}}}
    assert compute_reward(copy.deepcopy(s0), copy.deepcopy(s0), s0, flags).reward == 1.0
    as_number = {"owners": {"o1": {"owner_id": "o1", "vip": 1, "stars": 3}}}  # == says equal; the column does not
    result = compute_reward(as_number, copy.deepcopy(s0), s0, flags)
    assert result.reward == 0.0 and result.tables[0].mismatches[0]["column"] == "vip"
    as_float = {"owners": {"o1": {"owner_id": "o1", "vip": True, "stars": 3.0}}}  # numbers by value
    assert compute_reward(as_float, copy.deepcopy(s0), s0, flags).reward == 1.0


def test_missing_and_extra_rows_fail():
    missing = agent_state()
    del missing["notes"]["n_mine"]
    assert compute_reward(missing, GOLD, S0, SCHEMA).tables[1].missing == ["n_gold"]
    extra = agent_state()
    extra["notes"]["n_two"] = dict(extra["notes"]["n_mine"], note_id="n_two")
    result = compute_reward(extra, GOLD, S0, SCHEMA)
    assert result.reward == 0.0 and result.tables[1].extra == ["n_two"]


def test_answers_must_be_said_as_answers():
    answers = [{"kind": "money", "value": 1042.5, "label": "the total"},
               {"kind": "words", "value": "Wen Okafor", "label": "who"},
               {"kind": "datetime", "value": "2026-03-10T09:00:00Z", "label": "when"}]
    told = ["It's with Wen Okafor on Tuesday 10 March at 9 am; you owe $1,042.50 in total."]
    assert all(c["met"] for c in answer_checks(answers, told))
    assert not any(c["met"] for c in answer_checks(answers, ["Done."]))
    wrong = answer_checks(answers, ["It's with Wen Okafor on 11 March at 09:00; you owe 1042.05."])
    assert [c["met"] for c in wrong] == [False, True, False]


def test_a_reply_that_recites_what_it_saw_is_not_an_answer():
    seen = [{"items": [{"amount_due": 1042.5, "issued_on": "2026-02-03", "status": "issued"},
                       {"amount_due": 310.25, "issued_on": "2026-01-15", "status": "paid"},
                       {"amount_due": 88.9, "issued_on": "2025-12-20", "status": "void"}]}]
    answer = [{"kind": "money", "value": 1042.5, "label": "what is left"}]
    plain = answer_checks(answer, ["You still owe 1,042.50 on the bill from 3 February."], seen)
    recital = answer_checks(answer, ["I see 1042.5, 310.25, 88.9, issued, paid, void, 2026-02-03, 2026-01-15."], seen)
    assert plain[0]["met"] and not recital[0]["met"] and recital[0]["recital"] > 3


def test_a_refusal_passes_only_with_no_write_and_the_reason_said():
    refusal = {"reason": "the bill is void", "keywords": ["void", "cancelled"]}
    assert refusal_check(refusal, ["I'm sorry, but I can't pay that bill: it is void."])["met"]
    assert not refusal_check(refusal, ["I'm sorry, I can't help with that."])["met"]
    said = ["I'm sorry, I can't: that bill is void."]
    assert compute_reward(S0, S0, S0, SCHEMA, assistant_messages=said, refusal=refusal).reward == 1.0
    wrote = copy.deepcopy(S0)
    wrote["owners"]["o1"]["name"] = "Ada B."
    assert compute_reward(wrote, S0, S0, SCHEMA, assistant_messages=said, refusal=refusal).reward == 0.0


def test_a_gold_state_shares_with_s0_only_the_rows_identical_to_s0s_and_is_not_changed():
    from tasks.reward import with_rows_shared

    s0 = {"owners": {"o1": {"owner_id": "o1", "stars": 1}, "o2": {"owner_id": "o2", "stars": 2},
                     "o3": {"owner_id": "o3", "stars": 3}}, "meta": ["not rows"]}
    gold = {"owners": {"o1": {"owner_id": "o1", "stars": 1}, "o2": {"owner_id": "o2", "stars": 2.0},
                       "o3": {"owner_id": "o3", "stars": 4}, "o4": {"owner_id": "o4", "stars": 1}},
            "meta": ["not rows"]}
    kept = copy.deepcopy(gold)
    shared = with_rows_shared(s0, gold)
    assert shared == gold and gold == kept
    assert shared["owners"]["o1"] is s0["owners"]["o1"]
    assert shared["owners"]["o2"] is gold["owners"]["o2"]  # 2.0 is not 2: a changed type is a change
    assert shared["owners"]["o3"] is gold["owners"]["o3"] and shared["owners"]["o4"] is gold["owners"]["o4"]
    assert shared["meta"] is gold["meta"]


def test_rewards_are_the_same_when_the_gold_and_final_states_share_s0s_rows():
    """Sessions keep the gold state with s0's own rows where they are identical, and a session's state
    shares s0's untouched rows: the reward meets those rows by identity and must come out the same."""
    from tasks.reward import with_rows_shared

    def sharing(state):  # as a session's state: s0's row objects where the row is untouched
        return {table: {pk: S0[table][pk] if S0.get(table, {}).get(pk) == row else row for pk, row in rows.items()}
                for table, rows in state.items()}

    moved_city = agent_state()
    moved_city["owners"]["o1"] = {"owner_id": "o1", "name": "Ada", "city": "Lisbon"}
    deleted = agent_state()
    del deleted["owners"]["o1"]
    retyped = agent_state()
    retyped["owners"]["o1"] = {"owner_id": "o1", "name": "Ada", "city": "Porto", "extra": None}
    for final in (agent_state(), agent_state(stars=4), agent_state(body="Not a priority customer"), moved_city,
                  deleted, retyped, copy.deepcopy(S0)):
        plain = compute_reward(copy.deepcopy(final), copy.deepcopy(GOLD), copy.deepcopy(S0), SCHEMA)
        shared = compute_reward(sharing(final), with_rows_shared(S0, GOLD), S0, SCHEMA)
        assert (shared.reward, shared.partial, shared.reasons()) == (plain.reward, plain.partial, plain.reasons())
        assert shared.breakdown() == plain.breakdown()
        assert [t.as_dict() for t in shared.tables] == [t.as_dict() for t in plain.tables]


def test_a_status_said_in_other_words_is_the_answer_and_still_rules_out_the_others():
    from tasks.reward import answer_checks

    answer = {"kind": "words", "value": "in_progress", "label": "where your request stands", "source": {},
              "template": "{value}", "exclusive": ["open", "resolved"]}
    assert answer_checks([answer], ["Your request is being worked on."])[0]["met"]
    assert not answer_checks([answer], ["Your request is open."])[0]["met"]
    assert not answer_checks([answer], ["It is being worked on, or maybe resolved."])[0]["met"]
