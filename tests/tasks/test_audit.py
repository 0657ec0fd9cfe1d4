"""Each audit, with a task built to trip it (and a sound task that trips none)."""

import copy

from tasks.audit import audit, ungrounded_arguments
from tests.tasks.conftest import NOTES_SCHEMA


def codes(flags):
    return {f["code"] for f in flags}


def test_a_sound_task_has_no_flag_and_records_its_effective_perturbations(notes_task, notes_sandbox):
    assert audit(notes_task, notes_sandbox) == []
    assert set(notes_task.perturbations) == {"changed_argument", "dropped_write", "extra_write"}


def test_an_unreachable_ground_truth_is_not_solvable(notes_task, notes_sandbox):
    notes_task.s_gt["notes"]["n1"]["stars"] = 4  # the gold chain sets 5
    flags = audit(notes_task, notes_sandbox)
    assert "not_solvable" in codes(flags)
    assert "stars" in next(f["reason"] for f in flags if f["code"] == "not_solvable")


def test_a_gold_chain_that_changes_nothing_is_a_noop(notes_task, notes_sandbox):
    notes_task.gold_chain = [{"tool": "get_note", "args": {"note_id": "n1"}}]
    notes_task.s_gt = copy.deepcopy(notes_task.s0)
    notes_task.instruction = "Please look up note n1."
    assert "noop_gold" in codes(audit(notes_task, notes_sandbox))


def test_a_reward_blind_to_the_changed_column_is_insensitive_to_perturbation(notes_task, notes_sandbox):
    blind = copy.deepcopy(NOTES_SCHEMA)
    blind["tables"]["notes"]["columns"]["stars"]["policy"] = "exempt"
    notes_task.schema = blind
    flags = audit(notes_task, notes_sandbox)
    assert "perturbation_passes" in codes(flags)


def test_a_value_missing_from_the_instruction_is_ungrounded(notes_task, notes_sandbox):
    notes_task.instruction = "Please look up note n1 and give it a better rating."
    assert ungrounded_arguments(notes_task) == ["step 1 set_stars.stars=5"]
    assert "ungrounded_argument" in codes(audit(notes_task, notes_sandbox))


def test_hidden_state_in_tool_code_makes_replays_nondeterministic(notes_task, notes_sandbox):
    notes_task.gold_chain = [{"tool": "bump", "args": {"note_id": "n1"}}]
    notes_task.instruction = "Please bump note n1."
    first = notes_sandbox.run_sequence(notes_task.gold_chain, state=copy.deepcopy(notes_task.s0), return_state=True)
    notes_task.s_gt = first["state"]
    assert "nondeterministic_replay" in codes(audit(notes_task, notes_sandbox))
