"""Each audit, with a real task changed to trip it (and sound tasks of every kind that trip none)."""

import copy

import pytest

from tasks.audit import audit, fitting_rows, leaks, unreachable

KINDS = ("write", "question", "refusal")


def codes(flags):
    return {f["code"] for f in flags}


@pytest.mark.parametrize("kind", KINDS)
def test_sound_tasks_have_no_flag_and_record_their_effective_perturbations(engine, kind):
    _draft, spec = engine.task(kind)
    assert audit(spec, engine.sandbox, engine.view) == []
    assert spec.perturbations


def test_an_unreachable_ground_truth_is_not_solvable(engine):
    _draft, spec = engine.task("write")
    table, rows = next((t, r) for t, r in spec.s_gt.items() if r != spec.s0.get(t))
    pk = next(pk for pk in rows if rows[pk] != spec.s0[table].get(pk))
    column = next(c for c, v in rows[pk].items() if isinstance(v, str) and c not in ("status",))
    rows[pk][column] = rows[pk][column] + " (something else)"
    flags = audit(spec, engine.sandbox, engine.view)
    assert "not_solvable" in codes(flags)


def test_a_write_task_whose_gold_changes_nothing_is_a_noop(engine):
    _draft, spec = engine.task("write")
    spec.gold_chain = spec.gold_chain[:1]
    spec.s_gt = copy.deepcopy(spec.s0)
    assert "noop_gold" in codes(audit(spec, engine.sandbox, engine.view))


def test_a_reward_blind_to_what_the_chain_reads_is_insensitive_to_perturbation(engine):
    _draft, spec = engine.task("question")
    spec.communicate_info = []  # nothing the reads find is checked any more
    spec.subgraph = []  # and no extra write is available to perturb with
    flags = audit(spec, engine.sandbox, engine.view)
    assert "perturbation_passes" in codes(flags)
    assert not spec.perturbations


def test_another_row_that_fits_the_description_is_ambiguous(engine):
    _draft, spec = engine.task("write", "cancel_booking")
    target = spec.evaluation["targets"][0]
    twin = copy.deepcopy(spec.s0[target["table"]][target["pk"]])
    pk_col = engine.view.tables[target["table"]]["pk"]
    twin[pk_col] = target["pk"] + "x"
    spec.s0[target["table"]][twin[pk_col]] = twin
    assert len(fitting_rows(spec.s0, target)) == 2
    flags = audit(spec, engine.sandbox, engine.view)
    assert "ambiguous" in codes(flags)


def test_user_text_naming_a_tool_a_parameter_or_an_id_is_a_leak(engine):
    _draft, spec = engine.task("write")
    assert leaks(spec, engine.view) == []
    step = spec.gold_chain[-1]
    spec.script.opening += f" Please run {step['tool']} with {next(iter(step['args']))} set."
    found = leaks(spec, engine.view)
    assert any("names the tool" in f for f in found) and any("names the parameter" in f for f in found)
    assert "leak" in codes(audit(spec, engine.sandbox, engine.view))


def test_an_id_the_user_cannot_know_in_the_gold_chain_is_unreachable(engine):
    draft, spec = engine.task("write", "cancel_booking")
    assert unreachable(spec) == []
    last = spec.gold_chain[-1]
    param = next(iter(last["args"]))
    last["args"][param] = draft.gold_calls[-1]["args"][param]  # the literal id instead of finding it
    assert any("internal id" in p for p in unreachable(spec))
    assert "unreachable" in codes(audit(spec, engine.sandbox, engine.view))


def test_a_refusal_neither_the_tool_nor_the_policy_forbids_is_unsound(engine):
    _draft, spec = engine.task("refusal", "update_friends_profile")
    assert audit(spec, engine.sandbox, engine.view) == []
    view = copy.copy(engine.view)
    view.policy = "Be helpful."
    flags = audit(spec, engine.sandbox, view)
    assert "unsound_refusal" in codes(flags)


def test_hidden_state_in_tool_code_makes_replays_nondeterministic(notes_task, notes_sandbox, engine):
    notes_task.gold_chain = [{"tool": "bump", "args": {"note_id": "n1"}}]
    first = notes_sandbox.run_sequence(notes_task.gold_chain, state=copy.deepcopy(notes_task.s0), return_state=True)
    notes_task.s_gt = first["state"]
    view = copy.copy(engine.view)
    view.tools = {}
    assert "nondeterministic_replay" in codes(audit(notes_task, notes_sandbox, view))
