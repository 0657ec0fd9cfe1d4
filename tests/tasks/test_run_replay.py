"""The run page replays a trajectory: a fixed number of queries whatever the run's length, step
bodies only when a step opens, the whole of every output on demand, the first failing step as
docs/decisions.md ("Trajectory view") defines it, and the final state against s_gt."""

import copy
import re

import pytest

from environments import batches
from environments.models import Tool
from tasks import selectors, services
from tasks.models import Run, RunStep, Task
from tasks.rollout.episode import score
from tasks.spec import build_task_spec
from tests.conftest import account, page_client
from tests.tasks.conftest import stored_tasks

pytestmark = pytest.mark.django_db(transaction=True)

AUTH = 4  # a signed-in page: the session, the user, the user's and the groups' permissions
PAGE_QUERIES = 5  # the run with its task; step summaries; the gold tools' arguments; one page of steps; wrong diffs
FRAGMENT_QUERIES = 2  # the run (visibility); the step or the page of steps


def rollouts(agent: str, seed: int = 21) -> list[Run]:
    """One run of ``agent`` on each task (made first when there is none)."""
    if not Task.objects.exists():
        stored_tasks(seed=seed, per_domain=2)
    batch, _ = services.start_rollout_batch(agent=agent, which="all", trials=1)
    for item in batch.items.all():
        batches.run_item(item.pk, worker="test")
    return list(Run.objects.filter(agent=agent).order_by("pk"))


def wrong_write(task, value_at: int) -> dict:
    """What a consistent built run needs: one of the domain's mutating tools and a read-only one, and
    a cell that tool writes (an ``exact`` column of a gold row) set to a wrong value in a final state
    that is otherwise s_gt. The reward and its breakdown are computed by the real reward on it, so
    the header, the breakdown and the final-state panel can only agree."""
    spec = build_task_spec(selectors.domain_view(task.domain), task)
    tools = Tool.objects.filter(domain=task.domain, status="verified").order_by("name")
    reader = next(t.name for t in tools if not t.mutates)
    for tool in (t for t in tools if t.mutates):
        for table in tool.writes:
            columns = spec.schema["tables"].get(table, {}).get("columns", {})
            for pk, row in sorted((task.s_gt.get(table) or {}).items()):
                for column, value in row.items():
                    if columns.get(column, {}).get("policy") == "exact" and isinstance(value, str) and value \
                            and column != spec.schema["tables"][table].get("pk"):
                        final = copy.deepcopy(task.s_gt)
                        final[table][pk][column] = f"v{value_at}"
                        reward, breakdown = score(spec, final, [], [], "max_steps")
                        return {"writer": tool.name, "reader": reader, "table": table, "pk": pk, "column": column,
                                "gold": value, "final": final, "reward": reward, "breakdown": breakdown}
    raise AssertionError("the test domain has no writable exact text column")


def long_run(task, steps: int = 500, marker: str = "MARK") -> Run:
    """A run of ``steps`` steps built directly: user, agent and tool-call rows, each body carrying a
    marker naming its step (so a test can tell which bodies a response holds). Two calls of a
    mutating tool (302 and 410) write the same cell; 410's value is the wrong one the run ends with."""
    w = wrong_write(task, value_at=410)
    table, pk, column = w["table"], w["pk"], w["column"]
    run = Run.objects.create(task=task, agent="random", trial=7, reward=w["reward"], termination="max_steps",
                             step_count=steps, final_state=w["final"], breakdown=w["breakdown"])
    rows = []
    for i in range(steps):
        kind = ("user", "message", "tool_call", "tool_call")[i % 4]
        body = f"{marker}-{i:04d}-" + "x" * 3000
        diff = {table: {"added": {}, "removed": {}, "changed": {pk: {column: ["a", f"v{i}"]}}}} if i in (302, 410) else {}
        tool = (w["writer"] if diff else w["reader"]) if kind == "tool_call" else ""
        rows.append(RunStep(run=run, index=i, kind=kind, tool=tool,
                            arguments={"q": body} if kind == "tool_call" else None,
                            outcome="success" if kind == "tool_call" else "",
                            observation=body if kind == "tool_call" else "", diff=diff,
                            content=body if kind != "tool_call" else "", duration_ms=1.5))
    RunStep.objects.bulk_create(rows, batch_size=250)
    return run


# -- the first failing step ------------------------------------------------------------------


def test_it_is_the_earliest_step_that_left_a_wrong_value_in_place():
    breakdown = {"failing_tables": [{"table": "t", "mismatches": [{"pk": "r1", "column": "c", "why": "exact mismatch",
                                                                     "expected": 5, "got": 4}],
                                     "extra": ["r9"], "missing": []}]}
    wrong = selectors.wrong_cells(breakdown)
    diffs = [
        (2, {"t": {"added": {}, "removed": {}, "changed": {"r1": {"c": [1, 5]}}}}),  # right, later overwritten
        (4, {"t": {"added": {"r9": {"id": "r9"}}, "removed": {}, "changed": {}}}),  # a row s_gt does not have
        (6, {"t": {"added": {}, "removed": {}, "changed": {"r1": {"c": [5, 4]}}}}),  # the wrong value
        (8, {"t": {"added": {}, "removed": {}, "changed": {"r2": {"c": [0, 1]}}}}),  # a row nobody flagged
    ]
    assert selectors.locate_wrong_write(wrong, diffs)[0] == 4
    index, why = selectors.locate_wrong_write(wrong, [d for d in diffs if d[0] != 4])
    assert index == 6 and "t[r1].c" in why and "expected 5, got 4" in why
    # Values the agent never wrote (an omission) name no step.
    assert selectors.locate_wrong_write(wrong, [diffs[3]]) is None


def test_wrong_runs_point_at_the_call_that_wrote_the_wrong_row_and_passing_runs_have_none():
    for run in rollouts("wrong_pick"):
        page = selectors.replay_page(run)
        failing = page["failing"]
        assert failing is not None, run
        step = run.step_rows.get(index=failing.index)
        failing_tables = {t["table"] for t in run.breakdown["failing_tables"]}
        if failing.rule == "wrote_wrong_value":
            assert step.kind == "tool_call" and failing_tables & set(step.diff)
            assert "which the reward found wrong" in failing.why
            # No earlier call touched a row the reward found wrong.
            wrong = selectors.wrong_cells(run.breakdown)
            for earlier in run.step_rows.filter(kind="tool_call", index__lt=failing.index):
                for table, change in earlier.diff.items():
                    touched = {str(pk) for section in change.values() for pk in section}
                    assert not any((table, pk) in wrong for pk in touched), (run.pk, earlier.index)
        else:  # nothing written was wrong (an omission, or only the answer or refusal): a failed call or the end
            assert failing.rule in ("tool_error", "ended")
            diffs = run.step_rows.filter(kind="tool_call").order_by("index").values_list("index", "diff")
            assert selectors.locate_wrong_write(selectors.wrong_cells(run.breakdown), diffs) is None
            if failing.rule == "ended":
                assert step.kind != "user" and not run.step_rows.filter(index__gt=failing.index).exclude(
                    kind="user").exists()
    for run in rollouts("oracle"):
        assert run.reward == 1.0 and selectors.replay_page(run)["failing"] is None


def test_without_a_wrong_write_it_is_the_first_failed_call_then_the_last_agent_step():
    task = stored_tasks(seed=23, per_domain=1)[0]
    run = Run.objects.create(task=task, agent="null", reward=0.0, termination="agent_stop", step_count=5,
                             final_state=task.s0, breakdown={"failing_tables": [], "reasons": ["no answer"]})
    kinds = [("user", ""), ("tool_call", "success"), ("tool_call", "unexpected_failure"), ("message", ""), ("user", "")]
    RunStep.objects.bulk_create([RunStep(run=run, index=i, kind=k, outcome=o, tool="t" if k == "tool_call" else "",
                                         observation="Error: KeyError: 'x'" if o == "unexpected_failure" else "",
                                         content="hi" if k != "tool_call" else "")
                                 for i, (k, o) in enumerate(kinds)])
    failing = selectors.first_failing_step(run, selectors.step_summaries(run))
    assert (failing.index, failing.rule) == (2, "tool_error")
    RunStep.objects.filter(run=run, index=2).update(outcome="success")
    failing = selectors.first_failing_step(run, selectors.step_summaries(run))
    assert (failing.index, failing.rule) == (3, "ended") and "no answer" in failing.why


def test_the_page_names_the_first_failing_step_and_explains_the_rule():
    runs = rollouts("perturbed") + rollouts("collateral")  # what a perturbed run does depends on the task's id
    run = next(r for r in runs if any(t["mismatches"] for t in r.breakdown["failing_tables"]))
    failing = selectors.replay_page(run)["failing"]
    body = page_client().get(f"/runs/{run.pk}/").content.decode()
    assert f"First failing step: #{failing.index}" in body and 'data-shortcut="f"' in body
    assert "How is the first failing step found?" in body and "the step that wrote each one last" in body
    assert f'href="?step={failing.index}#step-{failing.index}"' in body
    assert "Why the reward is 0.0" in body and "Reward breakdown" in body
    mismatch = next(t for t in run.breakdown["failing_tables"] if t["mismatches"])["mismatches"][0]
    assert mismatch["column"] in body and mismatch["why"] in body


# -- bounded queries and lazy bodies ---------------------------------------------------------


def test_the_page_and_its_fragments_use_a_fixed_number_of_queries_whatever_the_length(
        django_assert_max_num_queries):
    task = stored_tasks(seed=24, per_domain=1)[0]
    short, long = long_run(task, steps=12), long_run(task, steps=500)
    client = page_client()
    client.get("/tasks/")  # the session and the user are loaded once
    counts = {}
    for run in (short, long):
        urls = {"page": (f"/runs/{run.pk}/", PAGE_QUERIES),
                "step": (f"/runs/{run.pk}/step/?index={run.step_count - 1}", FRAGMENT_QUERIES),
                "steps": (f"/runs/{run.pk}/steps/?page=2", FRAGMENT_QUERIES),
                "final state": (f"/runs/{run.pk}/final-state/", FRAGMENT_QUERIES)}
        for name, (url, bound) in urls.items():
            with django_assert_max_num_queries(bound + AUTH) as queries:
                assert client.get(url).status_code == 200, url
            counts.setdefault(name, []).append(len(queries.captured_queries))
    assert all(small == large for small, large in counts.values()), counts


def test_a_500_step_run_shows_one_page_of_step_headers_and_loads_bodies_on_demand(django_assert_num_queries):
    task = stored_tasks(seed=25, per_domain=1)[0]
    run = long_run(task, steps=500)
    client = page_client()
    response = client.get(f"/runs/{run.pk}/")
    body = response.content.decode()
    assert len(re.findall(r'<li class="step ', body)) == selectors.REPLAY_STEPS_PER_PAGE == 50
    assert 'id="step-49"' in body and 'id="step-50"' not in body
    assert len(re.findall(r'class="tick ', body)) == 500  # the strip still spans the whole run
    assert "MARK-0400" not in body and "MARK-0060" not in body
    assert "x" * 400 not in body  # headers carry short excerpts, never a body
    assert len(response.content) < 250_000
    # The first failing step (the call that wrote the wrong cell last) is on another page.
    assert "First failing step: #410" in body
    # A body loads when its step opens; the page of a far step loads by number.
    step = client.get(f"/runs/{run.pk}/step/?index=410").content.decode()
    assert "MARK-0410" in step and "State diff" in step and "v410" in step
    page = client.get(f"/runs/{run.pk}/steps/?page=9&failing=410").content.decode()
    assert 'id="step-400"' in page and 'id="step-449"' in page and 'id="step-450"' not in page
    assert "first failing step" in page and "MARK-0410" in page  # its header's excerpt
    assert "x" * 400 not in page
    opened = client.get(f"/runs/{run.pk}/steps/?page=9&open=all").content.decode()
    calls = sum(1 for i in range(400, 450) if i % 4 in (2, 3))
    assert opened.count("<b>Tool call</b>") == calls and "x" * 2500 in opened


def test_long_outputs_are_collapsed_and_shown_whole_on_demand():
    task = stored_tasks(seed=26, per_domain=1)[0]
    run = Run.objects.create(task=task, agent="random", reward=0.0, termination="agent_stop", step_count=1,
                             final_state=task.s0, breakdown={})
    table = next(iter(task.s0))
    rows = {f"new{i}": {"id": f"new{i}", "note": "n" * 10} for i in range(60)}
    RunStep.objects.create(run=run, index=0, kind="tool_call", tool="dump", arguments={"q": 1}, outcome="success",
                           observation="[" + ", ".join(f'"{i:05d}"' for i in range(3000)) + "]",
                           diff={table: {"added": rows, "removed": {}, "changed": {}}})
    client = page_client()
    step = client.get(f"/runs/{run.pk}/step/?index=0").content.decode()
    assert "show all (" in step and "02999" not in step
    assert step.count("+ new") == selectors.REPLAY_DIFF_ROWS and "show every row of this diff" in step
    whole = client.get(f"/runs/{run.pk}/step/?index=0&part=observation").content.decode()
    assert "02999" in whole
    diff = client.get(f"/runs/{run.pk}/step/?index=0&part=diff").content.decode()
    assert diff.count("+ new") == 60 and "show every row" not in diff
    assert client.get(f"/runs/{run.pk}/step/?index=0&part=secret").status_code == 404
    assert client.get(f"/runs/{run.pk}/step/?index=5").status_code == 404
    assert client.get(f"/runs/{run.pk}/step/").status_code == 404


def test_generated_text_renders_escaped_inside_hx_disable_containers():
    task = stored_tasks(seed=27, per_domain=1)[0]
    run = Run.objects.create(task=task, agent="random", reward=0.0, termination="agent_stop", step_count=2,
                             final_state=task.s0, breakdown={})
    evil = '<script>alert(1)</script><a hx-get="/admin/" hx-trigger="load">x</a>'
    RunStep.objects.create(run=run, index=0, kind="user", content=evil)
    RunStep.objects.create(run=run, index=1, kind="tool_call", tool=evil[:100], arguments={"q": evil},
                           outcome="success", observation=evil)
    client = page_client()
    for url in (f"/runs/{run.pk}/", f"/runs/{run.pk}/step/?index=0", f"/runs/{run.pk}/step/?index=1",
                f"/runs/{run.pk}/steps/?page=1&open=all"):
        body = client.get(url).content.decode()
        assert "<script>alert" not in body and '<a hx-get="/admin/"' not in body, url
        assert "&lt;script&gt;alert(1)" in body, url
    body = client.get(f"/runs/{run.pk}/step/?index=1").content.decode()
    assert re.search(r'<pre class="observation" hx-disable>[^<]*&lt;script&gt;', body)
    assert re.search(r'<pre class="arguments" hx-disable>', body)


# -- the side panels and access ----------------------------------------------------------------


def test_the_final_state_marks_the_wrong_cells_and_colours_columns_by_policy():
    def kept_row(m):  # a mismatch on a row both states have (not a new row aligned by content)
        return m["why"] != "closest new row differs"

    runs = rollouts("perturbed", seed=28) + rollouts("collateral")
    run = next(r for r in runs if any(kept_row(m) for t in r.breakdown["failing_tables"] for m in t["mismatches"]))
    failing = next(t for t in run.breakdown["failing_tables"] if any(kept_row(m) for m in t["mismatches"]))
    mismatch = next(m for m in failing["mismatches"] if kept_row(m))
    body = page_client().get(f"/runs/{run.pk}/final-state/").content.decode()
    assert f"<code>{failing['table']}</code>" in body and "differs" in body
    assert re.search(r'<th class="pol-(exact|semantic)" title="policy: ', body)
    assert re.search(r'<th class="pol-exempt" title="policy: exempt">', body) or "exempt" not in str(failing)
    # The mismatching column comes first after the row, marked wrong, with s_gt's value beside it.
    assert f"<code>{mismatch['pk']}</code>" in body
    assert re.search(r'<td class="p-\w+ c-wrong">[^<]*<span class="gold">s_gt: ', body)


def test_the_gold_chain_sits_beside_the_agents_calls():
    run = next(r for r in rollouts("oracle", seed=29) if r.task.gold_chain)
    gold = selectors.gold_beside_calls(Run.objects.select_related("task").get(pk=run.pk),
                                       selectors.step_summaries(run))
    assert [g["tool"] for g in gold["rows"]] == [s["tool"] for s in run.task.gold_chain]
    assert all(g["step"] is not None and g["same_args"] for g in gold["rows"])
    body = page_client().get(f"/runs/{run.pk}/").content.decode()
    assert "Gold chain beside the agent's calls" in body and "same arguments" in body


def test_other_accounts_sessions_and_agents_are_kept_out():
    task = stored_tasks(seed=30, per_domain=1)[0]
    owner = account("Researcher", "owner")
    run = Run.objects.create(task=task, agent="external", owner=owner, step_count=1, final_state=task.s0)
    RunStep.objects.create(run=run, index=0, kind="user", content="private")
    other = page_client("Researcher", "other")
    for url in (f"/runs/{run.pk}/", f"/runs/{run.pk}/steps/", f"/runs/{run.pk}/step/?index=0",
                f"/runs/{run.pk}/step/?index=0&part=content", f"/runs/{run.pk}/final-state/"):
        assert other.get(url).status_code == 404, url
        assert page_client("Agent", "agent-1").get(url).status_code == 403, url
    assert page_client("Curator").get(f"/runs/{run.pk}/step/?index=0").status_code == 200


# -- one story: header, breakdown and final state agree ------------------------------------------


def test_header_breakdown_and_final_state_tell_the_same_story():
    task = stored_tasks(seed=31, per_domain=1)[0]
    w = wrong_write(task, value_at=113)
    run = Run.objects.create(task=task, agent="random", reward=w["reward"], termination="max_steps", step_count=130,
                             final_state=w["final"], breakdown=w["breakdown"], seconds=0.25)
    RunStep.objects.bulk_create([RunStep(
        run=run, index=i, kind=("user", "message", "tool_call")[i % 3],
        tool=(w["writer"] if i == 113 else w["reader"]) if i % 3 == 2 else "", outcome="success" if i % 3 == 2 else "",
        content="" if i % 3 == 2 else f"message {i}",
        diff={w["table"]: {"added": {}, "removed": {}, "changed": {w["pk"]: {w["column"]: [w["gold"], "v113"]}}}}
        if i == 113 else {}) for i in range(130)])
    client = page_client()
    body = client.get(f"/runs/{run.pk}/").content.decode()
    b = run.breakdown
    checks = sum(t["checks"] for t in b["tables"].values()) + len(b["communicate_checks"]) + bool(b["refusal_check"])
    passed = (sum(t["passed"] for t in b["tables"].values()) + sum(c["met"] for c in b["communicate_checks"])
              + bool(b["refusal_check"] and b["refusal_check"]["met"]))
    assert f"{b['partial']} <span class=\"muted\">({passed} of {checks} checks passed)" in body
    assert round(passed / checks, 4) == b["partial"]
    assert f"Every table ({len(task.s_gt)})" in body
    failing = next(t for t in b["failing_tables"] if t["table"] == w["table"])
    assert f"{failing['passed']} of {failing['checks']} checks passed" in body
    assert f"<td>{w['gold']}</td><td><span class=\"bad\">v113</span>" in body  # expected, got: as the states hold
    assert f"First failing step: #113" in body and f"wrote {w['table']}[{w['pk']}].{w['column']}" in body
    assert "Duration</dt><dd>250 ms" in body and "step limit reached" in body
    final = client.get(f"/runs/{run.pk}/final-state/").content.decode()
    assert re.search(rf'<td class="p-exact c-wrong">v113<span class="gold">s_gt: {re.escape(w["gold"])}</span>', final)
    assert "does not match the stored states" not in final


def test_a_contradictory_stored_breakdown_is_not_believed_piecemeal():
    """A breakdown that contradicts the run (as a hand-made fixture can): partial 0.9 beside 0 of 1
    checks, no table summary, a mismatch whose values are not the states', a read-only call with a
    diff. The page recomputes the score from the checks it lists, lists the failing table, says the
    breakdown does not match the states, and never names the read-only call as the writer."""
    task = stored_tasks(seed=32, per_domain=1)[0]
    w = wrong_write(task, value_at=0)
    table, pk, column = w["table"], w["pk"], w["column"]
    run = Run.objects.create(
        task=task, agent="random", reward=0.0, termination="max_steps", step_count=6, final_state=task.s_gt,
        breakdown={"reward": 0.0, "db_match": False, "partial": 0.9, "reasons": ["wrong"], "tables": {},
                   "failing_tables": [{"table": table, "checks": 1, "passed": 0, "missing": [], "extra": [],
                                       "mismatches": [{"pk": pk, "column": column, "policy": "exact",
                                                       "expected": "a", "got": "b", "why": "exact mismatch"}]}]})
    RunStep.objects.bulk_create([RunStep(
        run=run, index=i, kind=("user", "message", "tool_call")[i % 3], tool=w["reader"] if i % 3 == 2 else "",
        outcome="success" if i % 3 == 2 else "", content=f"m{i}" if i % 3 != 2 else "",
        diff={table: {"added": {}, "removed": {}, "changed": {pk: {column: ["a", "b"]}}}} if i == 2 else {})
        for i in range(6)])
    failing = selectors.replay_page(run)["failing"]
    assert failing.rule != "wrote_wrong_value" and failing.index != 2
    client = page_client()
    body = client.get(f"/runs/{run.pk}/").content.decode()
    assert "0.9" not in body and "0.0 <span class=\"muted\">(0 of 1 check passed)" in body
    assert "Every table (1)" in body
    final = client.get(f"/runs/{run.pk}/final-state/").content.decode()
    assert "does not match the stored states" in final and f"{table}[{pk}].{column}" in final


def test_the_gold_panel_clips_long_arguments_and_links_the_step_that_holds_them_all():
    import json

    task = stored_tasks(seed=25, per_domain=1)[0]
    gold_tool = task.gold_chain[0]["tool"]
    arguments = {"q": "y" * 3000}
    run = Run.objects.create(task=task, agent="random", trial=1, reward=0.0, termination="max_steps", step_count=1,
                             final_state=task.s0, breakdown={})
    RunStep.objects.create(run=run, index=0, kind="tool_call", tool=gold_tool, arguments=arguments, outcome="success",
                           observation="{}", diff={}, content="")
    body = page_client().get(f"/runs/{run.pk}/").content.decode()
    assert "y" * selectors.GOLD_ARGS_SHOWN_CHARS not in body
    assert f"… ({len(json.dumps(arguments)):,} characters)" in body
    assert 'href="?step=0#step-0"' in body  # the step itself shows them all


def test_a_hedged_or_recited_answer_is_named_as_the_reason_the_reward_is_zero():
    task = stored_tasks(seed=25, per_domain=1)[0]
    checks = [{"label": "where your request stands", "value": "in_progress", "kind": "words", "met": False,
               "ruled_out": ["open"]},
              {"label": "the total you owe", "value": 120.5, "kind": "money", "met": False, "recital": 6}]
    run = Run.objects.create(task=task, agent="hedger", trial=1, reward=0.0, termination="user_stop", step_count=0,
                             final_state=task.s0, breakdown={"reward": 0.0, "communicate_ok": False,
                                                             "communicate_checks": checks})
    body = page_client().get(f"/runs/{run.pk}/").content.decode()
    assert "the answer was hedged: the reply also says open" in body and "(the reply also says open)" in body
    assert "the reply recites 6 other values it saw instead of answering" in body
    assert "the answer the user needed was not given" not in body
