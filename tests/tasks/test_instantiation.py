"""Task instantiation on a synthesized domain: intents, a τ²-shaped scenario, a careful agent's gold
chain, s0 with near misses, s_gt by execution, expansion and the gate."""

import networkx as nx
import pytest

from environments.runtime import statekit
from tasks.audit import leaks, unreachable
from tasks.instantiation import COMPLEXITY
from tasks.instantiation.pipeline import GateSettings, complexity_score, gate_score
from tasks.spec import build_task_spec
from tests.tasks.conftest import Engine

SCENARIO_FIELDS = {"domain", "reason_for_call", "known_info", "unknown_info", "task_instructions"}


@pytest.fixture(scope="module")
def built(engine):
    drafts = [engine.draft(seed, level) for seed, level in zip(range(12), list(COMPLEXITY) * 4)]
    replays = [engine.sandbox.run_sequence(d.gold_chain, state=statekit.copy_state(d.s0), return_state=True)
               for d in drafts]
    return engine.view, drafts, replays


def test_every_task_has_a_tau2_user_scenario_and_a_script_for_the_user(built):
    view, drafts, _ = built
    for d in drafts:
        assert set(d.user_scenario) == {"persona", "instructions"}
        assert set(d.user_scenario["instructions"]) == SCENARIO_FIELDS
        assert d.user_scenario["instructions"]["domain"] == view.name
        assert d.script["opening"] and d.script["facts"]
        assert d.user_profile["name"] and d.user_profile["email"]
        assert d.kind in ("write", "question", "refusal") and d.intent


def test_nothing_the_user_says_names_a_tool_a_parameter_or_an_id_and_ids_are_found_with_tools(built):
    view, drafts, _ = built
    for d in drafts:
        spec = build_task_spec(view, d)
        assert leaks(spec, view) == []
        assert unreachable(spec) == []
        if d.kind != "refusal":  # a refusal about someone else's record needs only the caller looked up
            assert any(statekit.is_reference(v) for s in d.gold_chain for v in s["args"].values())


def test_the_gold_chain_finds_the_customer_by_e_mail_first(built):
    view, drafts, _ = built
    for d in drafts:
        first = d.gold_chain[0]
        assert first["tool"].startswith("search_") and d.user_profile["email"] in first["args"].values()


def test_s_gt_is_the_gold_chain_executed_on_s0_and_only_write_tasks_change_it(built):
    _, drafts, replays = built
    for d, run in zip(drafts, replays):
        assert [r["outcome"] for r in run["results"]] == ["success"] * len(d.gold_chain)
        assert run["state_hash"] == statekit.state_hash(d.s_gt)
        changed = statekit.state_hash(d.s_gt) != statekit.state_hash(d.s0)
        assert changed == (d.kind == "write"), d.intent


def test_near_misses_and_distractors_are_marked_schema_valid_and_do_not_change_the_gold_run(built):
    view, drafts, _ = built
    assert any(r["why"].startswith("near miss") for d in drafts for r in d.evaluation["rows_added"])
    hard = [len(d.distractors) for d in drafts if d.complexity == "hard"]
    easy = [len(d.distractors) for d in drafts if d.complexity == "easy"]
    assert max(hard) > max(easy)
    for d in drafts:
        assert statekit.validate_rows(view.schema, d.s0) == []
        for row in d.distractors + d.evaluation["rows_added"]:
            assert row["pk"] in d.s0[row["table"]]
        for row in d.distractors:
            assert d.s_gt[row["table"]].get(row["pk"]) == d.s0[row["table"]][row["pk"]]
    # A distractor person is someone else: it never carries the customer's name or e-mail.
    people = [(d, d.s0[r["table"]][r["pk"]]) for d in drafts for r in d.distractors if r["table"] == d.user_profile["table"]]
    assert people
    for d, row in people:
        assert d.user_profile["email"] not in row.values() and d.user_profile["name"] not in row.values()


def test_write_tasks_change_only_the_customers_records(built):
    _, drafts, _ = built
    writes = [d for d in drafts if d.kind == "write"]
    assert writes
    for d in writes:
        figures = d.evaluation["figures"]
        assert figures["writes_own"], (d.intent, figures)


def test_the_same_seed_gives_the_same_task(engine):
    first = engine.instantiator.build(5, "medium")
    again = engine.instantiator.build(5, "medium")
    assert first.content_hash == again.content_hash and first.script == again.script


def test_a_batch_mixes_writes_questions_and_refusals(engine):
    kinds = {engine.draft(seed, "easy").kind for seed in range(40, 70)}
    assert kinds == {"write", "question", "refusal"}


def test_question_tasks_carry_their_answers_and_refusals_their_forbidden_call(built):
    _, drafts, _ = built
    for d in drafts:
        if d.kind == "question":
            assert d.communicate_info and all(len(str(a["value"])) >= 2 for a in d.communicate_info)
        if d.kind == "refusal":
            refusal = d.evaluation["refusal"]
            assert refusal["forbidden"]["tool"] and refusal["keywords"] and refusal["by"] in ("tool", "policy")


def test_expansion_admits_only_executable_tools_and_reaches_the_floor(built):
    view, drafts, _ = built
    graph = view.graph()
    component = nx.node_connected_component(graph.to_undirected(), drafts[0].gold_chain[0]["tool"])
    for d in drafts:
        assert {s["tool"] for s in d.gold_chain} <= set(d.subgraph)
        assert d.h_size >= min(20, len(component))
        admitted = {e["tool"] for e in d.expansion if e["outcome"].startswith("success")}
        assert admitted <= set(d.subgraph)
        assert d.c_h == round(complexity_score(graph, set(d.subgraph), GateSettings()), 4)


def test_every_gate_decision_is_recorded_with_its_inputs(built):
    _, drafts, _ = built
    for d in drafts:
        assert d.gate
        for decision in d.gate:
            assert decision["decision"] in ("expand", "floor", "stop")
            if "p" in decision:
                assert decision["p"] == gate_score(decision["unused"], decision["c_h"], decision["g_d"])


def test_the_gate_score_formula():
    assert gate_score(unused=10, c_h=0.2, g_d=1.0) == 0.8
    assert gate_score(unused=2, c_h=0.0, g_d=0.5) == 0.2
    assert gate_score(unused=10, c_h=1.5, g_d=1.0) == 0.0


def test_a_new_e_mail_keeps_the_customers_own_name(engine):
    draft, _spec = engine.task(kind="write", intent="update_profile", level="easy")
    seed = draft.seed
    checked = 0
    for start in range(seed, seed + 200):
        try:
            draft, _spec = engine.task(kind="write", intent="update_profile", level="easy", start=start)
        except LookupError:
            break
        call = draft.gold_calls[-1]
        if "email" not in call["args"] or call["tool"].startswith("search"):
            continue
        old = draft.user_profile["email"]
        new = call["args"]["email"]
        # the same person: the old address's name part (without its number), at another address
        assert new != old and new.split("@")[0].rstrip("0123456789") == old.split("@")[0].rstrip("0123456789")
        checked += 1
        if checked == 3:
            break
    assert checked, "no e-mail change among the update_profile tasks"


def test_a_read_asked_twice_with_no_write_between_is_one_gold_step():
    from tasks.instantiation.intents import Chain
    from tasks.instantiation.view import ToolView

    def tool(name: str, writes: list[str]) -> ToolView:
        return ToolView(name=name, template="", kind="", parameters={}, output_fields=[], contract={},
                        reads=[], writes=writes, code="", raises=[])

    listing, paying = tool("list_bills", []), tool("pay_bill", ["bills"])
    chain = Chain()
    first = chain.add(listing, {"customer_id": 1})
    assert chain.add(listing, {"customer_id": 1}) == first  # the careful agent looks once
    assert chain.add(listing, {"customer_id": 2}) != first  # other arguments: another call
    chain.add(paying, {"bill_id": 7})
    after = chain.add(listing, {"customer_id": 1})  # after a write the list may differ: asked again
    assert after != first and len(chain.steps) == 4


def test_the_customer_asks_with_the_right_article():
    from tasks.instantiation.intents import article

    assert [article(w) for w in ("interview slot", "visit", "installer slot", "unit", "open house")] == [
        "an", "a", "an", "a", "an"]


def test_the_agents_proposal_of_a_new_record_is_in_its_own_voice_and_names_each_detail_once():
    from tests.tasks.conftest import Engine

    engine = Engine(1029)  # an event studio: the customer books a vendor for one of their events
    try:
        draft, _spec = engine.task(kind="write", intent="file_record")
    finally:
        engine.close()
    (write,) = draft.script["writes"]
    summary = write["summary"]
    assert summary.startswith("make a vendor booking with the vendor ") and " my " not in f" {summary} "
    assert [d["kind"] for d in write["details"]] == ["words", "words"]
    for detail in write["details"]:
        assert summary.count(str(detail["value"])) == 1, summary
    assert write["done"] == "Your vendor booking is made."


def test_a_count_and_a_yes_or_no_are_asked_and_known_in_plain_words():
    import random

    from tasks.instantiation.intents import Context, _describe_value_fact

    class Table:
        name = "stay_reviews"

    ctx = Context(catalog=type("Catalog", (), {"today": None})(), rows=None, rng=random.Random(1), level="easy")
    _describe_value_fact(ctx, Table(), "stars", {"type": "integer"}, 5)
    _describe_value_fact(ctx, Table(), "quantity", {"type": "integer"}, 2)
    _describe_value_fact(ctx, Table(), "pinned", {"type": "boolean"}, True)
    _describe_value_fact(ctx, Table(), "is_private", {"type": "boolean"}, False)
    stars, quantity, pinned, private = ctx.facts
    # the user says only the value (the column's name would be a leak); the question and the
    # scenario read as people speak
    assert (stars.say, stars.known, stars.question) == ("5.", "It is 5 stars.", "How many stars?")
    assert (quantity.say, quantity.known) == ("2.", "The quantity is 2.")
    assert (pinned.say, pinned.known, pinned.question) == ("Yes.", "You want it pinned.", "Should it be pinned?")
    assert (private.say, private.known, private.question) == ("No.", "You do not want it private.",
                                                              "Should it be private?")


def test_a_day_is_known_as_said_and_free_text_is_quoted():
    import datetime as dt
    import random

    from tasks.instantiation.intents import Context, _describe_value_fact

    class Table:
        name = "timesheets"

    ctx = Context(catalog=type("Catalog", (), {"today": dt.date(2026, 3, 1)})(), rows=None, rng=random.Random(1),
                  level="easy")
    _describe_value_fact(ctx, Table(), "worked_on", {"type": "string", "format": "date"}, "2026-03-14")
    _describe_value_fact(ctx, Table(), "note", {"type": "string"}, "Sprint planning")
    _describe_value_fact(ctx, Table(), "summary", {"type": "string"}, "Bug fixing on the login page")
    _describe_value_fact(ctx, Table(), "hours", {"type": "number"}, 0.5)
    _describe_value_fact(ctx, Table(), "hours", {"type": "number"}, 7.0)
    day, note, summary, hours, whole = ctx.facts
    assert (day.say, day.known, day.question) == ("Saturday 14 March.", "It was worked on Saturday 14 March.",
                                                  "Which day was it worked on?")
    # words the customer writes are asked for as such, not by the column's name ("What should the note be?")
    assert (note.known, note.question) == ('You want it to say "Sprint planning".', "What would you like it to say?")
    assert (summary.known, summary.question) == ('The summary is "Bug fixing on the login page".', "What is the summary?")
    assert (hours.say, hours.known, hours.question) == ("0.5.", "It is 0.5 hours.", "How many hours?")
    assert (whole.say, whole.known) == ("7.", "It is 7 hours.")  # as people say it, not "7.0"


def test_a_company_customer_is_a_contact_person_calling_for_a_company_of_its_own():
    """A shipper is a company: its contact calls ("Aiko Moreau of Summit Works"), never "Your name is
    Summit Works", the company's name is no other shipper's, and the contact can change the account's
    contact e-mail (a column not named "email")."""
    courier = Engine(seed=1017)  # a courier service: its customers are shippers with a company name
    try:
        assert courier.view.tables.get("shippers") or courier.view.tables.get("senders")
        draft, _spec = courier.task(intent="update_profile", kind="write")
        person = draft.user_profile["table"]
        row = draft.s0[person][draft.user_profile["pk"]]
        company = row["company_name"]
        persona = draft.user_scenario["persona"]
        known = draft.user_scenario["instructions"]["known_info"]
        contact = persona.split(" of ")[0]
        assert persona.startswith(f"{contact} of {company}, a ") and contact != company
        assert f"Your name is {company}." not in known and f"your company, {company}" in known
        local = row[next(c for c in row if "email" in c)].split("@")[0].rstrip("0123456789")
        assert local == contact.lower().replace(" ", ".")  # the account's e-mail is the contact's own
        assert [r["company_name"] for r in draft.s0[person].values()].count(company) == 1
        call = draft.gold_calls[-1]
        assert call["tool"].startswith("update_") and set(call["args"]) - {f"{person[:-1]}_id"} == {"contact_email"}
        assert call["args"]["contact_email"].split("@")[0] == local
        other, _spec = courier.task(intent="update_friends_profile", kind="refusal")
        assert "your partner company " in other.user_scenario["instructions"]["reason_for_call"]
        assert other.script["refusal"]["reason"].endswith("own contact can change its account details")
    finally:
        courier.close()


def test_a_customer_books_a_slot_or_a_place_at_an_event_in_their_own_words():
    from tasks.instantiation.intents import booking_object

    store = Engine(seed=1004)  # an online store: a customer books places in a flash sale
    try:
        draft, _spec = store.task(kind="write", intent="book")
    finally:
        store.close()
    places = next(f for f in draft.script["facts"] if f["key"] == "places")
    said = "a place" if places["values"] == [1] else "two places"
    assert draft.script["opening"].startswith(("Hi", "Hello", "Good")) and "in the flash sale" in draft.script["opening"]
    assert said in draft.script["opening"] or said in draft.user_scenario["instructions"]["reason_for_call"]
    assert places["opening"], "how many was said with the thing booked: a careful agent need not ask again"

    assert booking_object("visit slot") == "the visit slot"
    assert booking_object("training session") == "a place at the training session"
    assert booking_object("flash sale", 2) == "two places in the flash sale"
    assert booking_object("audio room") == "a place in the audio room"
    assert booking_object("tour") == "a place on the tour"


def test_a_customer_moves_a_booking_the_new_slot_checked_before_the_old_booking_is_cancelled(engine):
    from tasks.rollout.agents import AGENTS
    from tasks.rollout.episode import run_episode

    draft, spec = engine.task(kind="write", intent="reschedule")  # a co-living operator's viewings
    tools = [s["tool"] for s in draft.gold_chain]
    cancel = next(i for i, t in enumerate(tools) if t.startswith("cancel_"))
    book = next(i for i, t in enumerate(tools) if t.startswith("book_"))
    searches = [i for i, t in enumerate(tools) if t.startswith("search_")]
    assert len(searches) >= 3 and max(searches) < cancel < book, "both days are looked at before anything changes"
    old, slot = draft.evaluation["targets"][:2]
    booking_table = old["table"]
    before, after = draft.s0[booking_table][old["pk"]], draft.s_gt[booking_table][old["pk"]]
    assert before["status"] in ("pending", "confirmed") and after["status"] == "cancelled"
    made = [row for pk, row in draft.s_gt[booking_table].items() if pk not in draft.s0[booking_table]]
    assert len(made) == 1 and made[0]["quantity"] == before["quantity"] and slot["pk"] in made[0].values()
    assert "move my" in draft.script["opening"] or "to another time" in draft.script["opening"]
    assert len(draft.script["writes"]) == 2 and "check that the new" in spec.policy

    oracle = run_episode(spec, AGENTS["oracle"](spec), engine.sandbox)
    assert oracle.reward == 1.0, oracle.breakdown["reasons"]
    proposals = [m["content"] for m in oracle.messages if m["role"] == "assistant" and "Shall I" in (m["content"] or "")]
    assert len(proposals) == 1 and "cancel" in proposals[0] and "book" in proposals[0]
    confirming = run_episode(spec, AGENTS["confirming"](spec), engine.sandbox)
    assert confirming.reward == 1.0, confirming.breakdown["reasons"]
    for name in ("wrong_pick", "collateral"):
        assert run_episode(spec, AGENTS[name](spec), engine.sandbox).reward == 0.0, name


def test_moving_a_booking_to_a_full_slot_is_refused_and_an_agent_that_cancels_first_earns_nothing(engine):
    from tasks.rollout.agents import AGENTS, PlannedAgent
    from tasks.rollout.episode import run_episode

    draft, spec = engine.task(kind="refusal", intent="reschedule_full")
    assert not any(s["tool"] in spec.mutating for s in draft.gold_chain)
    assert statekit.state_hash(draft.s_gt) == statekit.state_hash(draft.s0)
    forbidden = draft.evaluation["refusal"]["forbidden"]
    slot = draft.evaluation["targets"][1]
    assert slot["pk"] in forbidden["args"].values()
    catalog = engine.instantiator.catalog
    places = catalog.capacity_column(catalog.tables[slot["table"]])
    assert draft.s0[slot["table"]][slot["pk"]][places] == 0
    oracle = run_episode(spec, AGENTS["oracle"](spec), engine.sandbox)
    assert oracle.reward == 1.0, oracle.breakdown["reasons"]
    assert any("full" in (m["content"] or "") for m in oracle.messages if m["role"] == "assistant")

    old = draft.evaluation["targets"][0]
    cancel_tool = catalog.writer("cancel_booking", old["table"])

    class CancelsFirst(PlannedAgent):  # cancels the old booking, then finds the new slot full
        name = "cancels_first"
        confirm = "none"

        def make_plan(self):
            return [*(dict(s) for s in self.task.gold_chain),
                    {"tool": cancel_tool.name, "args": {catalog.key_param(cancel_tool, old["table"]): old["pk"]}},
                    {"tool": forbidden["tool"], "args": forbidden["args"]}]

    hasty = run_episode(spec, CancelsFirst(spec), engine.sandbox)
    calls = [s for s in hasty.steps if s.kind == "tool_call"]
    assert calls[-2].tool == cancel_tool.name and calls[-2].outcome == "success"
    assert calls[-1].tool == forbidden["tool"] and calls[-1].outcome != "success", "the full slot refuses the booking"
    assert hasty.reward == 0.0, "the customer lost the booking they had"


def test_a_customer_follows_up_a_request_by_reopening_it_or_asking_where_it_stands():
    from tasks import phrasing
    from tasks.reward import answer_checks
    from tasks.rollout.agents import AGENTS
    from tasks.rollout.episode import run_episode

    bank = Engine(seed=1003)  # a credit union: compliance alerts raised about an investor's portfolio
    try:
        draft, spec = bank.task(kind="write", intent="reopen_request")
        target = draft.evaluation["targets"][0]
        table = target["table"]
        initial = bank.view.tables[table]["machine"]["initial"]
        assert draft.s0[table][target["pk"]]["status"] == "resolved"
        assert draft.s_gt[table][target["pk"]]["status"] == initial
        near = [r["pk"] for r in draft.evaluation["rows_added"] if r["table"] == table and r["why"].startswith("near miss")]
        assert near and all(draft.s0[table][pk]["status"] == "resolved" for pk in near), "only the text tells them apart"
        oracle = run_episode(spec, AGENTS["oracle"](spec), bank.sandbox)
        assert oracle.reward == 1.0, oracle.breakdown["reasons"]
        holder = next(f for f in draft.script["facts"] if f["key"].endswith(":name"))  # the account it is about
        asked = next(i for i, m in enumerate(oracle.messages) if m["content"] == holder["question"])
        assert oracle.messages[asked + 1]["content"] == holder["say"]  # "Which of your accounts…?" gets its name
        assert run_episode(spec, AGENTS["wrong_pick"](spec), bank.sandbox).reward == 0.0

        # The refusal twin: the request was never resolved, so there is nothing to reopen.
        refusal, rspec = bank.task(kind="refusal", intent="reopen_unresolved_request")
        asked_about = refusal.evaluation["targets"][0]
        assert refusal.s0[table][asked_about["pk"]]["status"] != "resolved"
        assert refusal.evaluation["refusal"]["forbidden"]["args"] == {
            next(iter(refusal.evaluation["refusal"]["forbidden"]["args"])): asked_about["pk"]}
        assert not any(s["tool"] in rspec.mutating for s in refusal.gold_chain)
        assert run_episode(rspec, AGENTS["oracle"](rspec), bank.sandbox).reward == 1.0
        assert run_episode(rspec, AGENTS["wrong_pick"](rspec), bank.sandbox).reward == 0.0

        question, qspec = bank.task(kind="question", intent="ask_request_status")
        answer = question.communicate_info[0]
        asked_about = question.evaluation["targets"][0]
        assert answer["value"] == question.s0[asked_about["table"]][asked_about["pk"]]["status"]
        asked = [d.communicate_info[0]["value"] for d in (_draft_or_none(bank, seed) for seed in range(120))
                 if d is not None and d.intent.startswith("ask_request_status")]
        assert len(asked) >= 5 and "closed" not in asked  # the customer closes a request: they would know
        assert set(answer["exclusive"]) == set(bank.view.tables[table]["machine"]["states"]) - {answer["value"]}
        assert run_episode(qspec, AGENTS["oracle"](qspec), bank.sandbox).reward == 1.0
        said, other = phrasing.humanize(answer["value"]), phrasing.humanize(answer["exclusive"][0])
        assert answer_checks([answer], [f"Your alert is {said}."])[0]["met"]
        hedged = answer_checks([answer], [f"Your alert is {said} or maybe {other}."])[0]
        assert not hedged["met"] and hedged["ruled_out"] == [answer["exclusive"][0]]
        assert answer_checks([answer], [f"Your alert is {said}. When it is {other}, we will write to you."])[0]["met"]
    finally:
        bank.close()


def test_a_customer_closes_a_request_they_no_longer_need_and_leaves_the_others_as_they_are():
    from tasks.rollout.agents import AGENTS
    from tasks.rollout.episode import run_episode

    bank = Engine(seed=1003)
    try:
        draft, spec = bank.task(kind="write", intent="close_request")
        target = draft.evaluation["targets"][0]
        table = target["table"]
        assert draft.s0[table][target["pk"]]["status"] in ("open", "in_progress", "resolved")
        assert draft.s_gt[table][target["pk"]]["status"] == "closed"
        near = [r["pk"] for r in draft.evaluation["rows_added"] if r["table"] == table and r["why"].startswith("near miss")]
        assert near and all(draft.s_gt[table][pk] == draft.s0[table][pk] for pk in near)
        assert all(draft.s0[table][pk]["status"] != "closed" for pk in near), "a near miss could be closed as well"
        # the policy the agent reads says the customer may do it
        assert "may close their own when they no longer need it" in bank.view.policy
        assert run_episode(spec, AGENTS["oracle"](spec), bank.sandbox).reward == 1.0
        assert run_episode(spec, AGENTS["confirming"](spec), bank.sandbox).reward == 1.0
        assert run_episode(spec, AGENTS["wrong_pick"](spec), bank.sandbox).reward == 0.0
        # a closed request stays closed: the reopen tool refuses it
        reopen = next(t for t in bank.view.tools_for("transition", table)
                      if t.subject["transition"]["to"] == bank.view.tables[table]["machine"]["initial"])
        assert "closed" not in reopen.subject["transition"]["from"]
    finally:
        bank.close()


def test_a_batch_meets_many_different_customers(engine):
    from environments.synthesis.values import CUSTOMER_FIRST_NAMES, CUSTOMER_LAST_NAMES
    from tasks.instantiation import InstantiationError

    names = []
    for seed in range(300, 360):
        try:
            names.append(engine.draft(seed, "easy").user_profile["name"])
        except InstantiationError:  # a seed that makes no task is skipped
            continue
    assert len(names) >= 50
    surnames = {str(n).split()[-1] for n in names}
    assert len(surnames) >= 35, sorted(surnames)  # the fixtures' 28 surnames could not give this
    assert len(set(names)) >= len(names) - 2
    assert not {"Will", "Park", "May", "Mark", "Grant", "Rose"} & set(CUSTOMER_FIRST_NAMES + CUSTOMER_LAST_NAMES)


def test_the_agent_is_not_asked_again_for_a_day_the_opening_already_named(engine):
    from tasks import phrasing
    from tasks.instantiation import InstantiationError

    checked, intents = 0, set()
    for seed in range(0, 120):
        try:
            draft = engine.draft(seed, "medium")
        except InstantiationError:
            continue
        for fact in draft.script["facts"]:
            if fact["key"].split("#")[0] in ("when", "which_bill") and not fact["opening"]:
                day = str(fact["values"][-1])[:10]
                assert not phrasing.mentions_date(draft.script["opening"], day), (draft.intent, draft.script["opening"])
                checked += 1
        intents.add(draft.intent.split(":")[0])
    assert checked and {"cancel_ended_booking", "pay_bill"} <= intents


def test_before_a_refusal_the_agent_asks_only_what_finds_the_customer_and_the_record(engine):
    from tasks.instantiation import InstantiationError

    asked_for: dict[str, set[str]] = {}
    for seed in range(0, 200):
        try:
            draft = engine.draft(seed, "medium")
        except InstantiationError:
            continue
        if draft.kind != "refusal":
            continue
        needed = {f["key"].split("#")[0] for f in draft.script["facts"] if f["needed"] and not f["opening"]}
        asked_for.setdefault(draft.intent.split(":")[0], set()).update(needed)
    assert {"pay_void_bill", "update_friends_profile", "book_full"} <= set(asked_for), sorted(asked_for)
    for intent, keys in asked_for.items():
        # how much, how to pay, the new value, how many places, a visit's reason: refused whatever they are
        assert not keys & {"how_much", "method", "new_value", "places"} and not any("." in k for k in keys), (intent, keys)


GENERIC_REFUSALS = ("I'm sorry, but I can't do that for you; please get in touch directly.",
                    "I'm sorry, I can't help with that. That option is not available.",
                    "Unfortunately I'm unable to do that. I apologise for the inconvenience.")


@pytest.mark.parametrize("intent", ["update_friends_profile", "cancel_friends_booking", "book_full", "reschedule_full",
                                    "cancel_ended_booking", "pay_void_bill"])
def test_a_refusal_that_does_not_say_why_does_not_pass(engine, intent):
    from tasks.reward import refusal_check

    draft, _ = engine.task(kind="refusal", intent=intent)
    refusal = draft.evaluation["refusal"]
    for message in GENERIC_REFUSALS:
        assert not refusal_check(refusal, [message])["met"], message
    assert refusal_check(refusal, [f"I'm sorry, I can't do that: {refusal['reason']}."])["met"]


def test_an_ended_booking_is_refused_for_a_customer_who_was_there_and_the_other_past_bookings_took_place(engine):
    from tasks.instantiation.catalog import Catalog
    from tasks.instantiation.intents import booking_shapes

    draft, _ = engine.task(kind="refusal", intent="cancel_ended_booking")
    assert "could not make it" not in draft.user_scenario["instructions"]["reason_for_call"]
    booking = draft.evaluation["targets"][0]["table"]
    shape = next(s for s in booking_shapes(Catalog(engine.view)) if s.booking.name == booking)
    others = [r["pk"] for r in draft.evaluation["rows_added"] if r["table"] == booking and r["why"].startswith("near miss")
              and "another customer" not in r["why"]]
    assert others
    seen_past = 0
    for pk in others:
        row = draft.s0[booking][pk]
        held = draft.s0[shape.when_table][row[shape.rfk]] if shape.when_table != booking else row
        if str(held[shape.when_col])[:10] < engine.view.clock[:10]:
            seen_past += 1
            assert row["status"] == "completed", row  # a past booking still pending would be cancellable
    assert seen_past, "the near misses of a past booking are near it in time"


def _draft_or_none(engine, seed: int, level: str = "medium"):
    from tasks.instantiation import InstantiationError

    try:
        return engine.draft(seed, level)
    except InstantiationError:
        return None


def _hard_drafts(engine, seeds: int) -> list:
    """The hard tasks of the first ``seeds`` seeds (a seed that makes no task is skipped)."""
    return [d for d in (_draft_or_none(engine, seed, "hard") for seed in range(seeds)) if d is not None]


def test_a_question_is_not_asked_in_the_same_call_as_a_change_that_would_make_its_answer_stale(engine):
    from tasks.instantiation.intents import Intent
    from tasks.instantiation.pipeline import _answer_changed_by

    total = Intent("ask_total_owed:fee_invoices", "question", lambda c: {})
    assert _answer_changed_by(total, Intent("pay_bill:fee_invoices", "write", lambda c: {}))
    assert not _answer_changed_by(total, Intent("pay_bill:rent_invoices", "write", lambda c: {}))
    assert not _answer_changed_by(total, Intent("update_profile", "write", lambda c: {}))
    pairs = 0
    for draft in _hard_drafts(engine, 60):
        names = draft.intent.split("+")
        if len(names) == 2:
            pairs += 1
            kinds = {"question" if n.startswith("ask_") else "write" for n in names}
            tables = {n.partition(":")[2] for n in names}
            assert not (kinds == {"question", "write"} and len(tables) == 1), draft.intent
    assert pairs


def test_a_two_goal_scenario_says_which_record_is_which_and_the_persona_ends_the_call_in_its_words(engine):
    import re

    from tasks.instantiation.intents import CLOSINGS

    checked = 0
    for draft in _hard_drafts(engine, 40):
        tone = draft.user_scenario["persona"].rsplit("; ", 1)[1].rstrip(".")
        assert draft.script["closing"] == CLOSINGS[tone]
        known = draft.user_scenario["instructions"]["known_info"]
        subjects = re.findall(r"(The [^.]*?) is on ", known)
        assert len(subjects) == len(set(subjects)), known  # "the visit you want to cancel", "… to move"
        checked += len(subjects) > 1
    assert checked, "no two-goal task names two records of one kind"
