"""The agent's policy for a domain: its system prompt, written from the schema, the tools' contracts
and the business rules (never by hand per sector).

Modelled on τ²-bench's airline policy (docs: /work/shared/notes/tasks-that-teach.md §2): who the
agent is and the current time, general rules (identify the customer by e-mail, act only on their
own records, confirm before any change, one step at a time, refuse what is forbidden, invent
nothing), the domain basics (entities, attributes, statuses and transitions), then one section per
kind of action the domain really has, with the limits its contracts enforce.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..spec import DomainSpec, TableSpec, ToolSpec
from . import wording as W
from .generator import checks_active, owner_paths, person_tables, snake


def _tools_by(domain: DomainSpec) -> dict[tuple[str, str], list[ToolSpec]]:
    """(template, main table) -> tools."""
    out: dict[tuple[str, str], list[ToolSpec]] = {}
    for tool in domain.tools:
        subj = tool.contract.get("subject") or {}
        out.setdefault((subj.get("template", tool.template), subj.get("table", "")), []).append(tool)
    return out


def _code(name: str) -> str:
    return f"`{name}`"


def _clock_words(clock: str) -> str:
    moment = dt.datetime.fromisoformat(clock)
    return f"{moment:%A} {moment.day} {moment:%B %Y}, {moment:%H:%M} UTC"


def _attributes(table: TableSpec) -> str:
    cols = [c for c in table.columns if c.generator not in ("pk", "status")]
    parts = []
    for c in cols:
        phrase = W.short_phrase(c)
        if c.fk:
            phrase = W.words(c.name[:-3])
        elif c.type == "enum" and c.values and len(c.values) <= 6:
            phrase += f" ({W.join(list(c.values), 'or')})"
        if c.nullable:
            phrase += " (optional)"
        parts.append(phrase)
    return W.join(parts)


def _states_sentence(table: TableSpec, booked_with: str | None = None) -> str:
    machine = table.machine or {}
    states = [W.status_words(s) for s in machine.get("states", [])]
    moves = [f"{W.verb_words(verb)}: {W.join([W.status_words(s) for s in sources], 'or')} → {W.status_words(target)}"
             for verb, sources, target in machine.get("transitions", [])]
    if machine.get("cancel"):
        verb, sources, target = machine["cancel"]
        moves.append(f"{verb}: {W.join([W.status_words(s) for s in sources], 'or')} → {W.status_words(target)}")
    start = (f"one booked with {_code(booked_with)} is confirmed at once" if booked_with else
             f"a new one starts as {W.status_words(machine.get('initial', ''))}")
    text = f"{W.article(W.label(table)).capitalize()} is {W.join(states, 'or')}; {start}."
    if moves:
        text += " Allowed changes: " + "; ".join(moves) + "."
    return text


def write_policy(domain: DomainSpec, rules: dict[str, Any]) -> str:
    tools = _tools_by(domain)
    names = {t.name for t in domain.tools}
    by_name = {t.name: t for t in domain.tables}
    owned = owner_paths(domain.tables)
    people = person_tables(domain.tables)
    person = people[0] if people else None
    out: list[str] = []
    add = out.append

    add(f"# {domain.name}: customer-service policy")
    add("")
    add(f"You are the customer-service agent of {domain.name}. {domain.description}")
    add("")
    add(f"The current time is {domain.clock} ({_clock_words(domain.clock)}). Treat it as now: anything dated "
        f"before it is in the past. All dates and times are in UTC; give date-times to the tools in ISO 8601 with a "
        f"time zone, such as {W.DATE_TIME_EXAMPLE}.")
    add("")

    # -- general rules -----------------------------------------------------------------------
    add("## General rules")
    add("")
    if person is not None:
        p_label = W.label(person)
        email = next((c for c in person.columns if c.generator.split("(")[0] == "email"), None)
        search = f"search_{snake(person.name)}"
        how = f"with {_code(search)} and its {_code(email.name)} filter" if email is not None and search in names \
            else "with the tools"
        add(f"- **Identify the customer first.** Ask for the e-mail address they are registered with and look them up "
            f"{how}. If no {p_label} has that address, say so and do not act on any record. Never ask the customer "
            f"for an internal id (ids look like `{person.prefix}_1a2b3c`): find ids yourself with the search, get "
            f"and list tools.")
        mine = [W.plural(t) for t in domain.tables if t.name in owned and t.role != "person"]
        linked = f": their {p_label} profile and the records linked to it ({W.join(mine)})" if mine else \
            f": their own {p_label} profile"
        add(f"- **Act only on the customer's own records**{linked}. A record is theirs when it points at their "
            f"{p_label}, directly or through another of their records. Requests about another person's records must "
            f"be refused, even when the customer knows that person's details.")
        public = [W.plural(t) for t in domain.tables if t.name not in owned]
        if public:
            add(f"- Information about {W.join(public)} is not personal: you may share it with an identified customer.")
    add("- **Confirm before any change.** Before any action that changes a record (booking, cancelling, paying, "
        "opening a request, changing a detail), list the details of the action (which record, what changes, "
        "amounts, dates) and ask for an explicit \"yes\". Act only after that yes; if the customer changes the "
        "request, list the new details again.")
    add("- **One step at a time.** In each turn, either make one tool call or send one message to the customer, "
        "never both.")
    add("- **Refuse what this policy forbids** and say which rule forbids it. When the tools cannot do what is "
        "asked, say so; never claim that an action was done when it was not.")
    add("- **Never make up information.** Tell the customer only what the tools returned or what they told you: no "
        "invented ids, prices, times, statuses or rules.")
    add("")

    # -- domain basics -------------------------------------------------------------------------
    add("## Domain basics")
    add("")
    add(f"{domain.name} keeps these records (the prefix shows how ids start):")
    add("")
    for t in domain.tables:
        add(f"- **{W.plural(t).capitalize()}** ({_code(t.name)}, ids `{t.prefix}_…`): {_attributes(t)}.")
    machines = [t for t in domain.tables if t.machine]
    if machines:
        add("")
        add("Statuses:")
        add("")
        for t in machines:
            booked_with = next((tool.name for (template, _t), ts in tools.items() if template == "book"
                                for tool in ts if tool.contract["subject"]["table"] == t.name), None)
            add(f"- {_states_sentence(t, booked_with)}")
    add("")

    # -- bookings ------------------------------------------------------------------------------
    book_tools = [tool for (template, _t), ts in sorted(tools.items()) if template == "book" for tool in ts]
    for tool in book_tools:
        subj = tool.contract["subject"]
        booking = by_name[subj["table"]]
        resource = next(by_name[k] for k in subj["keys"].values() if by_name[k].role == "resource")
        holders = [by_name[k] for k in subj["keys"].values() if by_name[k].role != "resource"]
        capacity = next(c for c in resource.columns if c.generator.split("(")[0] == "capacity")
        units = W.capacity_unit(capacity)
        most = tool.parameters["properties"]["quantity"]["maximum"]
        b, r = W.label(booking), W.label(resource)
        add(f"## Booking {W.plural(resource)}")
        add("")
        search = f"search_{snake(resource.name)}"
        finding = ""
        if search in names:
            filters = tool_filters(domain, search)
            finding = f"Find {W.plural(resource)} with {_code(search)}" + (f" (filters: {filters})" if filters else "") + "; "
        add(f"- {finding}book with {_code(tool.name)}, which creates a confirmed {b}.")
        for h in holders:
            if h.role != "person" and h.name in owned:
                add(f"- {W.article(b).capitalize()} is made for one of the customer's own {W.plural(h)}; never for "
                    f"{W.article(W.label(h))} of someone else.")
        if resource.machine:
            add(f"- Only open {W.plural(resource)} can be booked; a closed {r} cannot.")
        add(f"- A booking cannot take more {units} than the {r} has left ({_code(capacity.name)}).")
        share = "exactly one" if most == 1 else f"at most {most}"
        if most < rules.get("max_per_booking", most):
            add(f"- {W.article(b).capitalize()} takes {share} of the {r}'s {units}: stricter than the general rule, "
                f"where the domain allows at most {rules['max_per_booking']} places per booking.")
        else:
            add(f"- At most {most} {units} per booking ({W.article(b)} takes 1 to {most}); the domain allows at most "
                f"{rules['max_per_booking']} places per booking.")
        if any(_checks_active(tool, h) for h in holders):
            add(f"- A suspended {W.label(person) if person else 'customer'} cannot book.")
        cancel = next((t.name for t in tools.get(("cancel_booking", booking.name), [])), None)
        if cancel:
            add(f"- Only a pending or confirmed {b} can be cancelled ({_code(cancel)}); a completed or already "
                f"cancelled one cannot. Cancelling gives the {units} back to the {r}.")
        can_open = "open and " if resource.machine else ""
        add(f"- To move {W.article(b)}, check that the new {r} is {can_open}has the {units}, then cancel the {b} and "
            f"book the new {r} with the same {units} and details, both confirmed by the customer.")
        add("")

    # -- payments ------------------------------------------------------------------------------
    pay_tools = [tool for (template, _t), ts in sorted(tools.items()) if template == "pay" for tool in ts]
    for tool in pay_tools:
        subj = tool.contract["subject"]
        invoice = by_name[next(iter(subj["keys"].values()))]
        due = next(c for c in invoice.columns if c.generator.split("(")[0] == "amount")
        inv = W.label(invoice)
        add(f"## Paying {W.plural(invoice)}")
        add("")
        add(f"- Pay with {_code(tool.name)}. Only an issued or partially paid {inv} can be paid; a paid or void "
            f"{inv} cannot.")
        if rules.get("exact_payment"):
            add(f"- The amount must equal the {W.short_phrase(due)} ({_code(due.name)}) exactly: partial payments and "
                f"overpayments are refused. After the payment the {inv} is paid.")
        else:
            add(f"- Partial payments are accepted, up to the {W.short_phrase(due)} ({_code(due.name)}); more than "
                f"that is refused. The payment is taken off the {W.short_phrase(due)}: the {inv} stays partially "
                f"paid until nothing is left, then it is paid.")
        method = tool.parameters["properties"].get("method", {})
        if method.get("enum"):
            add(f"- Accepted payment methods: {W.join(list(method['enum']), 'or')}.")
        if invoice.name in owned:
            add(f"- Pay only the customer's own {W.plural(invoice)}, and only when they ask and confirm the amount.")
        else:
            payer = next((by_name[c.fk["table"]] for c in invoice.columns if c.fk), None)
            if payer is not None:
                add(f"- {W.plural(invoice).capitalize()} belong to {W.plural(payer)}; pay one only for the "
                    f"{W.label(payer)} it belongs to, after they confirm the amount.")
        add("")

    # -- profile changes -----------------------------------------------------------------------
    if person is not None:
        p_label = W.label(person)
        update = tools.get(("update", person.name), [])
        add("## Profile changes")
        add("")
        if update:
            changeable = update[0].contract["subject"]["sets"]
            fixed = [W.short_phrase(c) for c in person.columns
                     if c.name not in changeable and c.generator not in ("pk", "status")]
            add(f"- The customer may change their {W.join([W.short_phrase(person.column(c)) for c in changeable])} "
                f"with {_code(update[0].name)}, after confirming the new values.")
            if fixed:
                status = ", nor the account status" if person.has("status") else ""
                add(f"- Nothing else of the profile can be changed: not the {W.join(fixed, 'or')}{status}.")
            if any(step.get("cond", {}).get("no_rows", {}).get("unique") for step in update[0].contract["steps"]):
                add(f"- An e-mail address identifies one {p_label}: it cannot be changed to an address another "
                    f"{p_label} already uses.")
            add("- After an e-mail change, the new address is the one that identifies the customer.")
        else:
            add("- Profile details cannot be changed through this service.")
        add("")

    # -- requests and other records the customer files -------------------------------------------
    # What customers write themselves: owned records with required free text that no staff workflow
    # (an order or a contract machine) runs.
    filed = [t for t in domain.tables if t.role == "record" and t.name in owned
             and any(c.type == "text" and not c.nullable for c in t.columns) and tools.get(("create", t.name))
             and (t.machine or {}).get("name") in (None, "ticket", "submission", "revision")]
    if filed:
        add("## Requests, reports and reviews")
        add("")
        for t in filed:
            create = tools[("create", t.name)][0]
            parents = [by_name[k] for k in create.contract["subject"]["keys"].values() if by_name[k].role != "person"]
            about = [f"one of their own {W.plural(p)}" if p.name in owned else W.article(W.label(p)) for p in parents]
            text_cols = [W.short_phrase(c) for c in t.columns if c.type == "text" and not c.nullable]
            what = f", giving the {W.join(text_cols)}" if text_cols else ""
            verb = "open" if (t.machine or {}).get("name") == "ticket" else "add"
            line = (f"- {W.plural(t).capitalize()}: the customer may {verb} one"
                    + (f" about {W.join(about)}" if about else "") + f" with {_code(create.name)}{what}.")
            if t.machine:
                line += f" A new {W.label(t)} starts as {W.status_words(t.machine['initial'])}."
                reopen = next((v for v, _s, _t in t.machine["transitions"] if v == "reopen"), None)
                if reopen:
                    sources = next(s for v, s, _t in t.machine["transitions"] if v == "reopen")
                    line += f" Only a {W.join([W.status_words(s) for s in sources], 'or')} one can be reopened."
                if any(v == "close" for v, _s, _t in t.machine["transitions"]):
                    line += " The customer may close their own when they no longer need it; a closed one stays closed."
            if _checks_active(create, person):
                line += f" A suspended {W.label(person)} cannot open one."
            add(line)
        add("")

    # -- stock ---------------------------------------------------------------------------------
    stocked = [t for t in domain.tables if any(c.generator.split("(")[0] == "stock" for c in t.columns)]
    if stocked:
        add("## Stock")
        add("")
        for t in stocked:
            stock = next(c for c in t.columns if c.generator.split("(")[0] == "stock")
            add(f"- {W.plural(t).capitalize()} have a stock count ({_code(stock.name)}). Units can only be taken out "
                f"when enough are left; never promise {W.article(W.label(t))} that is out of stock.")
        add("")

    # -- account status ------------------------------------------------------------------------
    if person is not None and person.machine and person.machine.get("name") == "account":
        add("## Account status")
        add("")
        add(f"- {W.article(W.label(person)).capitalize()}'s account is active or suspended.")
        gated = sorted({t.contract["subject"]["template"] for t in domain.tools if _checks_active(t, person)})
        if gated:
            acts = W.join(["make bookings" if "book" in gated else "", "open new records" if "create" in gated else ""],
                          "or")
            still = " and pay what they owe" if pay_tools else ""
            add(f"- A suspended {W.label(person)} cannot {acts}: tell them so and do not try to work around it. "
                f"They may still look up their records{still}.")
        else:
            add(f"- Here a suspended {W.label(person)} may still book, pay and open requests.")
        add("")
    return "\n".join(out).rstrip() + "\n"


def tool_filters(domain: DomainSpec, tool_name: str) -> str:
    """The filters of a search tool, in words with their parameter names."""
    tool = next(t for t in domain.tools if t.name == tool_name)
    filters = tool.contract["subject"]["filters"]
    words = []
    for p, spec in filters.items():
        if spec["cmp"] == "on_date":
            words.append(f"day with {_code(p)}")
        elif p.endswith("_id"):
            words.append(f"{W.words(p[:-3])} with {_code(p)}")
    return W.join(words[:3])


def _checks_active(tool: ToolSpec, table: TableSpec | None) -> bool:
    return table is not None and checks_active(tool, [table])
