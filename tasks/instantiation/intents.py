"""The intent library: goals a customer of a domain really has (Django-free).

An intent builds, for one customer of the domain, the rows the goal needs in s0 (the customer,
the record the goal is about, and near misses that differ in one detail: the same customer's other
booking, another open bill of a similar amount, another person's booking on the same slot), the
gold chain a careful agent following the policy runs (identify the customer by e-mail, find the
records they describe, act, tell them), what the customer knows and says, and what success is.

Gold chains select records by what the customer said about them, never by position:
``{"$pick": [step, "items", {"starts_at": "2026-03-10T09:00:00Z"}], "$get": "visit_id"}`` (see
``environments.runtime.statekit.resolve_refs``).

Kinds: ``write`` (the state must change as asked), ``question`` (read-only: the answer must be
said), ``refusal`` (the policy forbids it: nothing may change and the refusal must name why).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from tasks import phrasing as say

from .catalog import OPEN_BOOKING, OPEN_INVOICE, Catalog, Rows, iso
from .plan import Answer, Detail, Fact, Refusal, Target, Unknown, WriteGoal
from .view import TableView, ToolView

GREETINGS = ("Hi,", "Hello,", "Hi there,", "Good morning,", "Hello there,")
PERSONAS = ("terse, busy and polite", "friendly and chatty", "calm and precise", "a little impatient but courteous",
            "careful, double-checks details", "warm and appreciative")
# How each of them ends the call once they have what they wanted.
CLOSINGS = {"terse, busy and polite": "Thanks, that's all.",
            "friendly and chatty": "Lovely, thank you so much for your help!",
            "calm and precise": "Thank you, that is everything I needed.",
            "a little impatient but courteous": "Good, thanks. That's all.",
            "careful, double-checks details": "Thank you, that's clear. That's all I needed.",
            "warm and appreciative": "That's wonderful, thank you so much!"}
# Motives as (the customer's words, the scenario's words).
CANCEL_MOTIVES = (("it clashes with a work meeting", "it clashes with a work meeting"),
                  ("I'll be travelling that week", "you will be travelling that week"),
                  ("I don't need it any more", "you no longer need it"),
                  ("my plans have changed", "your plans have changed"))
BOOK_MOTIVES = (("I've been meaning to arrange it for a while", "you have been meaning to arrange it for a while"),
                ("a friend recommended it", "a friend recommended it"),
                ("my plans for that day just freed up", "your plans for that day just freed up"))
PAY_MOTIVES = (("I'd like to settle it before it's overdue", "you want to settle it before it is overdue"),
               ("I just got a reminder by post", "you got a reminder by post"))
RESCHEDULE_MOTIVES = (("something came up that day", "something came up that day"),
                      ("the new time suits me better", "the new time suits you better"),
                      ("I have to work that day after all", "you have to work that day after all"))
# A refusal must say why: that the slot is full. "That is not available" says only no.
FULL_WORDS = ["is full", "are full", "'s full", "now full", "already full", "completely full", "full up",
              "fully booked", "no places", "no seats", "no spots", "none left", "no availability",
              "sold out", "no more places", "no more seats", "no more spots", "no space", "not enough places",
              "not enough seats", "not enough spots", "not enough space", "no capacity", "no free", "booked up",
              "0 places", "zero places", "no places left", "no room left"]
def _motive(ctx: "Context", motives: tuple[tuple[str, str], ...], dated: bool) -> tuple[str, str]:
    """A motive; "that day" or "that week" only when the customer's opening has named the day."""
    fitting = [m for m in motives if dated or not any(w in m[0] for w in ("that day", "that week"))]
    return ctx.rng.choice(fitting)


QUESTION_MOTIVES = (("I'm planning my budget", "you are planning your budget"),
                    ("I want to be prepared", "you want to be prepared"))
POLICY_OWN_RULE = ("another person", "someone else", "own records", "other customers", "another customer")
# A refusal must say why: the record is someone else's. "Please get in touch directly" says only no.
REFUSE_OTHER = ["own", "account holder", "someone else", "another person", "another customer", "on behalf",
                "herself", "himself", "themselves", "their own", "not yours", "not your", "belongs",
                "their consent", "their permission"]
TEXTS = {  # realistic free text a customer fills in: by "table.column" first, then by the column's meaning
    "reason": ("Persistent cough for two weeks", "Follow-up on my knee injury", "Annual check-up",
               "Skin rash that keeps coming back", "Back pain after lifting boxes"),
    "return_reason": ("The item arrived damaged", "Wrong size delivered", "Not as described on the listing",
                      "Changed my mind, still unopened"),
    "issue": ("The kitchen tap is leaking", "Heating stopped working overnight", "The front door lock is stuck",
              "Mould on the bathroom ceiling", "Strange noise from the boiler"),
    "service_tickets.issue": ("The thermostat keeps losing its wifi connection",
                              "The hallway motion sensor stopped responding",
                              "The smart lock battery drains within a week", "The camera feed freezes every evening"),
    "summary": ("Small cut on the paw during the walk", "Ate something off the ground at the park",
                "Limping slightly after play time", "Scratch near the left eye"),
    "compliance_alerts.summary": ("A trade I did not authorize appears on my statement",
                                  "A withdrawal I don't recognise went out last week",
                                  "Someone tried to log in to my account from abroad",
                                  "Fees I was never told about were taken from my account"),
    "articles.summary": ("How to reset a forgotten password", "A short guide to exporting your data",
                         "What to do when a payment fails"),
    "pages.summary": ("How to reset a forgotten password", "A short guide to exporting your data",
                      "What to do when a payment fails"),
    "details": ("Repeated spam links in the group chat", "Offensive language aimed at other members"),
    "comment": ("Great quality and fast delivery", "Comfortable but runs a bit small", "Stopped working after two weeks",
                "Good value, would recommend to friends"),
    "stay_reviews.comment": ("Lovely staff, quiet rooms", "Comfortable bed but the breakfast was cold",
                             "Great view from the balcony, slow check-in", "Spotless room and a friendly reception"),
    "critiques.comment": ("Beautiful camera work but the ending felt rushed", "The second act drags, great soundtrack",
                          "A gripping story with a strong lead performance"),
    "body": ("The setup steps are out of date", "Very clear explanation, thank you",
             "The example in the second section no longer works"),
    "messages.body": ("Our dinner plans are still on", "Running ten minutes late, save me a seat",
                      "Thanks for the photos from the trip"),
    "note": ("Please call before delivery", "Leave the parcel with the neighbour"),
    "notes": ("Player felt pain after the sprint drill", "Twisted it during the warm-up"),
    "cover_letter": ("Five years of backend experience and keen to join your team",
                     "I led a small design team and would love to grow with you"),
    "answer_text": ("My solution uses a loop over the list and returns the total", "The answer is in the attached notes"),
    "change_note": ("Fixed the broken link in the second section", "Updated the screenshots for the new layout"),
    "dosage": ("One tablet twice a day after meals", "Apply a thin layer every evening"),
    "memo": ("Please send a copy by post", "Split across two payments"),
    "issue_description": ("The screen flickers when it starts", "Water dripping under the sink"),
}


# ---------------------------------------------------------------------------------------------
# Building blocks


class Chain:
    """The gold chain under construction, with the references intents need."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self.user: dict[str, Any] | None = None  # reference to the customer's primary key
        self._since_write: dict[str, int] = {}  # a read's key -> its step, while no write came after it

    def add(self, tool: ToolView, args: dict[str, Any]) -> int:
        """Append a call; a read asked again with the same arguments and no write in between is the
        step already made (two goals of one task both list the customer's bills: a careful agent
        looks once)."""
        key = json.dumps([tool.name, args], sort_keys=True, default=str)
        if not tool.mutates and key in self._since_write:
            return self._since_write[key]
        self.steps.append({"tool": tool.name, "args": args})
        if tool.mutates:
            self._since_write.clear()
        else:
            self._since_write[key] = len(self.steps) - 1
        return len(self.steps) - 1


def pick(step: int, where: dict[str, Any], field_name: str | None, path: str = "items") -> dict[str, Any]:
    ref: dict[str, Any] = {"$pick": [step, path, where]}
    if field_name:
        ref["$get"] = field_name
    return ref


def every(step: int, where: dict[str, Any], field_name: str) -> dict[str, Any]:
    return {"$all": [step, "items", where], "$get": field_name}


@dataclass
class Context:
    """What every intent of one task shares: the catalog, the rows, the chain, the customer."""

    catalog: Catalog
    rows: Rows
    rng: random.Random
    level: str
    chain: Chain = field(default_factory=Chain)
    user_row: dict[str, Any] | None = None
    facts: list[Fact] = field(default_factory=list)
    unknowns: list[Unknown] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    near_misses: int = 1
    contact: str | None = None  # the person who calls for a company customer ("Farah Larsen")

    @property
    def person(self) -> TableView:
        assert self.catalog.person is not None
        return self.catalog.person

    def fact(self, fact: Fact) -> None:
        """Add what the user knows; a second goal's fact of the same kind gets its own key."""
        same = [f for f in self.facts if f.key == fact.key or f.key.startswith(fact.key + "#")]
        if any(f.values == fact.values and f.say == fact.say for f in same):
            return
        if same:
            fact.key = f"{fact.key}#{len(same) + 1}"
        self.facts.append(fact)

    def user_name(self) -> str:
        col = self.catalog.name_column(self.person)
        return str(self.user_row.get(col)) if self.user_row and col else "the customer"

    def caller(self) -> str:
        """Who is on the line: the customer, or for a company customer its contact ("Farah Larsen
        of Atlas Trading")."""
        return f"{self.contact} of {self.user_name()}" if self.contact else self.user_name()

    @property
    def other_word(self) -> str:
        """What the caller calls another customer they act for: a friend, or a partner company."""
        return "partner company" if is_company(self.catalog, self.person) else "friend"


class NotApplicable(Exception):
    """The intent needs something this domain (or this draw) does not have."""


def _first_last(rng: random.Random) -> tuple[str, str]:
    from environments.synthesis.values import CUSTOMER_FIRST_NAMES, CUSTOMER_LAST_NAMES

    return rng.choice(CUSTOMER_FIRST_NAMES), rng.choice(CUSTOMER_LAST_NAMES)


NOT_PEOPLE = ("home", "household", "account holder", "account", "couple")  # a caller is one person


def is_company(cat: Catalog, person: TableView) -> bool:
    """The customers are companies (shippers named "Atlas Trading"): a contact person calls for one."""
    return cat.name_column(person) == "company_name"


def _unique_company(ctx: Context, column: str) -> str:
    """A company name no row of the customers' table has (a new row is modelled on an existing one)."""
    from environments.synthesis.values import COMPANY_A, COMPANY_B

    taken = {str(r.get(column)) for r in ctx.rows.state.get(ctx.person.name, {}).values()}
    free = [f"{a} {b}" for a in COMPANY_A for b in COMPANY_B if f"{a} {b}" not in taken]
    return ctx.rng.choice(free)


def customer_word(person: TableView) -> str:
    """What the customer is called: the person table's label when it names a person."""
    return "customer" if person.label in NOT_PEOPLE else person.label


def possessive(name: str) -> str:
    """"Goran Costa's", "Atlas Works'"."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def article(word: str) -> str:
    """"a" or "an" before ``word`` (the domains' own rule: "a unit", "an invoice")."""
    from environments.synthesis.procedural.wording import article as with_article

    return with_article(word).split(" ", 1)[0]


def make_customer(ctx: Context) -> dict[str, Any]:
    """A new customer row (unique e-mail) and the identity facts; the first gold step finds them.
    A task with two goals has one customer: the second call returns the first one's row."""
    if ctx.user_row is not None:
        return ctx.user_row
    person = ctx.person
    email_col = ctx.catalog.email_column(person)
    name_col = ctx.catalog.name_column(person)
    found = ctx.catalog.search(person.name, "eq", email_col)
    if email_col is None or name_col is None or found is None:
        raise NotApplicable("customers cannot be found by e-mail in this domain")
    first, last = _first_last(ctx.rng)
    values: dict[str, Any] = {email_col: ctx.rows.unique_email(person, email_col, first, last)}
    if person.columns[name_col].get("type") in ("string", "text") and name_col in ("full_name", "owner_name"):
        values[name_col] = f"{first} {last}"
    elif is_company(ctx.catalog, person):
        values[name_col] = _unique_company(ctx, name_col)
    if person.machine and "active" in person.states:
        values["status"] = "active"
    row = ctx.rows.add(person.name, "the customer of the task", **values)
    ctx.user_row = row
    email = row[email_col]
    ctx.fact(Fact("email", f"It's {email}.", ["email", "e-mail", "mail", "address on", "account"],
                  f"Your e-mail address is {email}.", "Could you give me the e-mail address on your account?",
                  [email]))
    if is_company(ctx.catalog, person):  # the caller is the company's contact; the e-mail carries their name
        ctx.contact = f"{first} {last}"
        ctx.fact(Fact("name", f"I'm {ctx.contact}, calling for {row[name_col]}.",
                      ["your name", "full name", "who am i", "speaking with", "company", "business"],
                      f"Your name is {ctx.contact}; you look after the account of your company, {row[name_col]}.",
                      "May I have your name and your company's?", [row[name_col]], needed=False))
    else:
        ctx.fact(Fact("name", f"I'm {row[name_col]}.", ["your name", "full name", "who am i", "speaking with"],
                      f"Your name is {row[name_col]}.", "May I have your name?", [row[name_col]], needed=False))
    ctx.unknowns.append(Unknown("ids", ["id", "number", "reference", "code", "account number", "customer number"],
                                "I don't have any reference number, sorry. You can look me up by my e-mail address.",
                                f"You do not know your {customer_word(person)} number or any internal reference."))
    tool, param = found
    step = ctx.chain.add(tool, {param: email})
    ctx.chain.user = pick(step, {email_col: email}, person.pk)
    return row


def make_person(ctx: Context, why: str) -> dict[str, Any]:
    """Another person of the domain (a friend, another customer), with a name and e-mail of their own."""
    person = ctx.person
    email_col, name_col = ctx.catalog.email_column(person), ctx.catalog.name_column(person)
    first, last = _first_last(ctx.rng)
    values: dict[str, Any] = {}
    if email_col:
        values[email_col] = ctx.rows.unique_email(person, email_col, first, last)
    if name_col in ("full_name", "owner_name"):
        taken = {str(r.get(name_col)) for r in ctx.rows.state[person.name].values()}
        while f"{first} {last}" in taken:
            first, last = _first_last(ctx.rng)
        values[name_col] = f"{first} {last}"
    elif name_col and is_company(ctx.catalog, person):
        values[name_col] = _unique_company(ctx, name_col)
    return ctx.rows.add(person.name, why, **values)


def owner_ref(ctx: Context, own: Any, what: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(reference to the owner row's key in the chain, owner row) for rows of ``own.table``: the
    customer, or one of the customer's ``own.through`` rows, picked by its name."""
    if own.through is None:
        return ctx.chain.user, ctx.user_row
    cat = ctx.catalog
    middle = cat.tables[own.through]
    name_col = cat.name_column(middle)
    listed = cat.lister(middle.name, ctx.person.name)
    if name_col is None or listed is None:
        raise NotApplicable(f"{middle.name} rows cannot be told apart by name")
    existing = {str(r.get(name_col)) for r in ctx.rows.state[middle.name].values()
                if r.get(own.through_fk) == ctx.user_row[ctx.person.pk]}
    base = ctx.rows.add(middle.name, f"the customer's {middle.label}", **{own.through_fk: ctx.user_row[ctx.person.pk]})
    name = str(base[name_col])
    if name in existing:
        raise NotApplicable("two of the customer's rows would share a name")
    tool, param = listed
    step = ctx.chain.add(tool, {param: ctx.chain.user})
    ctx.fact(Fact(f"{middle.name}:name", f"It's for {name}.", [middle.label, f"{middle.label}s", "which one", "name of",
                                                               "for whom"],
                  f"It concerns your {middle.label} {name}.", f"Which of your {middle.label}s is it about?", [name]))
    return pick(step, {name_col: name}, middle.pk), base


def _future_slot(ctx: Context, days: tuple[int, int] = (3, 40), past: bool = False) -> dt.datetime:
    day = ctx.catalog.today + dt.timedelta(days=ctx.rng.randint(*days) * (-1 if past else 1))
    hour = ctx.rng.randint(8, 17)
    minute = ctx.rng.choice((0, 0, 30))
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.timezone.utc)


def _clear_instant(ctx: Context, table: str, column: str, moment: str) -> None:
    """No other row of ``table`` happens at ``moment`` (the customer's words must single one out)."""
    for row in ctx.rows.state.get(table, {}).values():
        if row.get(column) == moment:
            row[column] = iso(_future_slot(ctx, (41, 80)))


def when_fact(ctx: Context, key: str, label: str, moment: str | None, day: str | None, opening: bool,
              purpose: str = "") -> None:
    """The day (and time) of the record the customer means. ``purpose`` ("you want to cancel")
    tells it apart in the scenario from another record of the same kind in a two-goal call."""
    today = ctx.catalog.today
    if moment:
        words = say.say_instant(moment, today)
        values: list[Any] = [moment, moment[:10]]
    else:
        words = say.say_date(day, today)
        values = [day]
    # the label's first word too: an agent that reads the policy's "session signup" asks "which session?"
    ctx.fact(Fact(key, f"The one on {words}.", ["which", "when", "date", "time", "what day", label,
                                                label.split()[0]],
                  f"The {label}{' ' + purpose if purpose else ''} is on {words}.", f"Which {label} is it, and when is it?",
                  values, opening=opening))


def _when_details(moment: str | None, day: str | None) -> list[Detail]:
    if moment:
        return [Detail("date", moment[:10]), Detail("time", moment)]
    return [Detail("date", day)]


# ---------------------------------------------------------------------------------------------
# Bookings


@dataclass
class BookingShape:
    booking: TableView
    own: Any
    resource: TableView
    rfk: str
    when_table: str  # where the booking's time lives: the resource or the booking itself
    when_col: str
    search: tuple[ToolView, str] | None  # search of the resource by day (when the time is on it)
    capacity: str | None


def _paid(shape: BookingShape) -> bool:
    """The booking or what it books has a price (a refund makes sense)."""
    columns = [*shape.booking.columns, *shape.resource.columns]
    return any(w in c for c in columns for w in ("price", "fee", "cost", "amount", "rate", "total"))


def booking_shapes(cat: Catalog) -> list[BookingShape]:
    shapes = []
    for t in cat.tables.values():
        if t.role != "booking":
            continue
        own = cat.ownership(t.name)
        rfk = next((c for c, target in t.fks().items() if cat.tables[target].role == "resource"), None)
        if own is None or rfk is None or cat.lister(t.name, own.through or cat.person.name) is None:
            continue
        resource = cat.tables[t.fks()[rfk]]
        when = cat.when_column(resource)
        search = cat.search(resource.name, "on_date", when) if when else None
        if when and search and cat.tables[resource.name].columns[when]["type"] == "datetime":
            shapes.append(BookingShape(t, own, resource, rfk, resource.name, when, search, cat.capacity_column(resource)))
            continue
        own_when = cat.when_column(t)
        if own_when and t.columns[own_when]["type"] == "date":
            shapes.append(BookingShape(t, own, resource, rfk, t.name, own_when, None, cat.capacity_column(resource)))
    return shapes


def _booking_rows(ctx: Context, shape: BookingShape, owner: dict[str, Any], status: str, moment: dt.datetime,
                  why: str, quantity: int = 1, resource: dict[str, Any] | None = None,
                  resource_values: dict[str, Any] | None = None,
                  booking_values: dict[str, Any] | None = None) -> tuple[dict, dict]:
    """A resource (unless given) and a booking of ``owner`` on it at ``moment``."""
    b, r = shape.booking, shape.resource
    if resource is None:
        values: dict[str, Any] = dict(resource_values or {})
        if shape.when_table == r.name:
            values[shape.when_col] = iso(moment)
            _clear_instant(ctx, r.name, shape.when_col, iso(moment))
        if r.machine and "open" in r.states:
            values["status"] = "open"
        if shape.capacity:
            values[shape.capacity] = ctx.rng.randint(2, 6)
        resource = ctx.rows.add(r.name, f"the {r.label} of {why}", **values)
    bvalues: dict[str, Any] = {**(booking_values or {}), shape.rfk: resource[r.pk], shape.own.fk: owner[
        ctx.catalog.tables[shape.own.through or ctx.person.name].pk], "status": status}
    if "quantity" in b.columns:
        bvalues["quantity"] = quantity
    if shape.when_table == b.name:
        bvalues[shape.when_col] = moment.date().isoformat()
    booking = ctx.rows.add(b.name, why, **bvalues)
    return resource, booking


def _find_booking(ctx: Context, shape: BookingShape, owner_key: dict[str, Any], moment: dt.datetime) -> dict[str, Any]:
    """Gold steps that find the customer's booking at ``moment``; returns the reference to its key."""
    cat = ctx.catalog
    tool, param = cat.lister(shape.booking.name, shape.own.through or cat.person.name)
    listed = ctx.chain.add(tool, {param: owner_key})
    if shape.search is None:
        return pick(listed, {shape.when_col: moment.date().isoformat()}, shape.booking.pk)
    search_tool, day_param = shape.search
    found = ctx.chain.add(search_tool, {day_param: moment.date().isoformat()})
    slots = every(found, {shape.when_col: iso(moment)}, shape.resource.pk)
    return pick(listed, {shape.rfk: {"$in": slots}}, shape.booking.pk)


def _booking_target(ctx: Context, shape: BookingShape, booking: dict, owner_pk: str, moment: dt.datetime,
                    description: str) -> Target:
    via = []
    where: dict[str, Any] = {shape.own.fk: owner_pk}
    if shape.when_table == shape.resource.name:
        via.append({"fk": shape.rfk, "table": shape.resource.name, "where": {shape.when_col: iso(moment)}})
    else:
        where[shape.when_col] = moment.date().isoformat()
    return Target(shape.booking.name, booking[shape.booking.pk], where, via, description)


def cancel_booking(ctx: Context, shape: BookingShape, variant: str = "write") -> dict[str, Any]:
    """Cancel one of the customer's bookings (refusals: one that already took place; a friend's)."""
    cat, b = ctx.catalog, shape.booking
    cancel = cat.writer("cancel_booking", b.name)
    if cancel is None:
        raise NotApplicable("no cancel tool")
    make_customer(ctx)
    past = variant == "refusal_ended"
    moment = _future_slot(ctx, past=past)
    if variant == "refusal_other":
        friend = make_person(ctx, "the friend whose booking the customer asks about")
        fname = str(friend.get(cat.name_column(ctx.person)))
        whose = possessive(fname)
        if shape.own.through is not None:
            raise NotApplicable("friend's bookings through owned rows are not phrased")
        _, booking = _booking_rows(ctx, shape, friend, "confirmed", moment, "the friend's booking")
        words = say.say_instant(iso(moment), cat.today) if shape.when_table != b.name else say.say_date(moment.date(), cat.today)
        fw = ctx.other_word
        ctx.fact(Fact("friend", f"My {fw} is {fname}.", ["friend", "partner", "whose", "their name", "who is"],
                      f"Your {fw} is {fname}; they asked you to cancel it for them.", f"What is your {fw}'s name?",
                      [fname], opening=True))
        when_fact(ctx, "when", b.label, iso(moment) if shape.when_table != b.name else None, moment.date().isoformat(), True,
                  f"your {fw} wants cancelled")
        details = _when_details(iso(moment) if shape.when_table != b.name else None, moment.date().isoformat())
        return {"kind": "refusal", "ask": f"I'd like to cancel my {fw} {whose} {b.label} on {words}. "
                                          "They asked me to do it for them.",
                "restate": f"I'd like you to cancel {whose} {b.label} on {words}.",
                "what": f"cancel your {fw} {whose} {b.label} on {words}",
                "motive": (("their contact is away today", "their contact is away today") if fw != "friend" else
                           ("they are busy today", "your friend is busy today")),
                "goal": WriteGoal(-1, ["cancel", "call off"], details, [], f"cancel {whose} {b.label}", ""),
                "swap": None,
                "refusal": Refusal(
                    reason=f"only the account holder can change {article(b.label)} {b.label}, so {fname} has to contact us themselves",
                    keywords=REFUSE_OTHER, forbidden={"tool": cancel.name, "args": {cat.key_param(cancel, b.name): booking[b.pk]}},
                    by="policy", rule="another person")}
    owner_key, owner = owner_ref(ctx, shape.own, b.label)
    owner_pk = owner[cat.tables[shape.own.through or ctx.person.name].pk]
    status = "completed" if past else ctx.rng.choice(OPEN_BOOKING)
    resource, booking = _booking_rows(ctx, shape, owner, status, moment, f"the customer's {b.label} the task is about")
    near = moment + dt.timedelta(days=ctx.rng.randint(1, 9), hours=ctx.rng.choice((-2, -1, 1, 3)))
    for k in range(ctx.near_misses):
        when = near + dt.timedelta(days=7 * k)
        # a booking whose time has passed took place; only one still to come is pending or confirmed
        _booking_rows(ctx, shape, owner, "completed" if when < cat.clock else ctx.rng.choice(OPEN_BOOKING), when,
                      f"near miss: the customer's other {b.label}")
    other = make_person(ctx, "another customer with a booking on the same slot")
    if shape.own.through is None and shape.when_table == shape.resource.name:
        _booking_rows(ctx, shape, other, "confirmed", moment, f"near miss: another customer's {b.label} on the same "
                      f"{shape.resource.label}", resource=resource)
    booking_key = _find_booking(ctx, shape, owner_key, moment)
    on_resource = shape.when_table == shape.resource.name
    words = say.say_instant(iso(moment), cat.today) if on_resource else say.say_date(moment.date(), cat.today)
    opening_has_when = ctx.rng.random() < 0.5 or past  # the refusal's ask always names the day
    when_fact(ctx, "when", b.label, iso(moment) if on_resource else None, moment.date().isoformat(), opening_has_when,
              "you want to cancel")
    ctx.targets.append(_booking_target(ctx, shape, booking, owner_pk, moment, f"the customer's {b.label} on {words}"))
    args = {cat.key_param(cancel, b.name): booking_key}
    step = None if past else ctx.chain.add(cancel, args)
    details = _when_details(iso(moment) if on_resource else None, moment.date().isoformat())
    wrong = _when_details(iso(near) if on_resource else None, near.date().isoformat())[:1]
    goal = WriteGoal(step if step is not None else -1, ["cancel", "call off", "cancellation"], details, wrong,
                     f"cancel your {b.label} on {words}", f"Your {b.label} on {words} is now cancelled.")
    ask = f"I need to cancel my {b.label} on {words}." if opening_has_when else f"I need to cancel one of my {b.label}s."
    swap = [[iso(moment), iso(near)], [moment.date().isoformat(), near.date().isoformat()]]
    result = {"kind": "write", "goal": goal, "ask": ask, "restate": f"I just want to cancel my {b.label} on {words}.",
              "motive": _motive(ctx, CANCEL_MOTIVES, opening_has_when), "what": f"cancel your {b.label} on {words}",
              "swap": swap}
    if past:
        refund = " and get my money back" if _paid(shape) else ""  # only a booking that cost something
        # It took place (completed): the customer is unhappy with it, not someone who missed it.
        result.update(kind="refusal", ask=f"I'd like to cancel my {b.label} from {words}{refund}.",
                      motive=("it wasn't what I expected", "it was not what you expected"),
                      refusal=Refusal(reason=f"that {b.label} has already taken place (it is completed); only pending "
                                             f"or confirmed {b.label}s can be cancelled",
                                      keywords=["completed", "already took place", "already taken place",
                                                "already happened", "in the past", "already over", "has passed",
                                                "took place", "is over"],
                                      forbidden={"tool": cancel.name, "args": {cat.key_param(cancel, b.name): booking[b.pk]}},
                                      by="tool", rule="pending or confirmed"))
    return result


def booking_object(label: str, quantity: int = 1) -> str:
    """What a customer books, in their words: "the visit slot", but "a place at the training
    session", "two places in the flash sale", "a place on the tour"."""
    if label.endswith("slot") or label.startswith("room"):
        return f"the {label}"
    places = "a place" if quantity == 1 else say.say_quantity(quantity, "place")
    if any(w in label for w in ("sale", "promotion", "room", "cohort", "class")):
        return f"{places} in the {label}"
    if any(w in label for w in ("tour", "excursion", "trip", "cruise")):
        return f"{places} on the {label}"
    return f"{places} at the {label}"


def book(ctx: Context, shape: BookingShape, variant: str = "write") -> dict[str, Any]:
    """Book places on a resource at a time the customer names (refusal: it is full)."""
    cat, b, r = ctx.catalog, shape.booking, shape.resource
    tool = cat.writer("book", b.name)
    if tool is None or shape.search is None or shape.capacity is None:
        raise NotApplicable("no booking by day in this domain")
    make_customer(ctx)
    owner_key, owner = owner_ref(ctx, shape.own, b.label)
    moment = _future_slot(ctx)
    limit = next((s.get("max") for s in tool.contract["steps"] if s.get("param") == "quantity" and "max" in s), 1)
    quantity = ctx.rng.randint(1, min(2, limit)) if "quantity" in tool.parameters["properties"] else 1
    values = {shape.when_col: iso(moment), shape.capacity: 0 if variant == "refusal_full" else quantity + ctx.rng.randint(0, 3)}
    if r.machine and "open" in r.states:
        values["status"] = "open"
    _clear_instant(ctx, r.name, shape.when_col, iso(moment))
    resource = ctx.rows.add(r.name, f"the {r.label} the customer wants", **values)
    near = moment + dt.timedelta(hours=ctx.rng.choice((-3, -2, 2, 3)))
    _clear_instant(ctx, r.name, shape.when_col, iso(near))
    ctx.rows.add(r.name, f"near miss: another {r.label} the same day", **{**values, shape.when_col: iso(near),
                                                                          shape.capacity: 4})
    search_tool, day_param = shape.search
    found = ctx.chain.add(search_tool, {day_param: moment.date().isoformat()})
    words = say.say_instant(iso(moment), cat.today)
    opening_has_when = ctx.rng.random() < 0.5 or variant != "write"
    when_fact(ctx, "when", r.label, iso(moment), None, opening_has_when, "you want")
    args: dict[str, Any] = {}
    template = next(iter((ctx.rows.state.get(b.name) or {}).values()), {})
    details_from = len(ctx.facts)
    for param, pschema in tool.parameters["properties"].items():
        target = _key_target(cat, tool, param)
        if target == ctx.person.name:
            args[param] = ctx.chain.user
        elif shape.own.through and target == shape.own.through:
            args[param] = owner_key
        elif target == r.name:
            args[param] = pick(found, {shape.when_col: iso(moment)}, r.pk)
        elif param == "quantity":
            args[param] = quantity
            if limit == 1:  # one place is all a booking takes (the policy says so): nothing to ask
                ctx.fact(Fact("places", "Just me.", PLACES_CUES,
                              "It is just for you.", "How many places would you like?", [quantity], needed=False))
            else:  # "a place at the practice" in the opening already says how many
                ctx.fact(Fact("places", f"{say.say_quantity(quantity, 'place').capitalize()}, please.",
                              PLACES_CUES,
                              f"You want {say.say_quantity(quantity, 'place')}.", "How many places would you like?",
                              [quantity], opening=not booking_object(r.label, quantity).startswith("the ")))
        elif param in tool.required:
            value = _value_for(ctx, b, param, pschema, template)
            args[param] = value
            _describe_value_fact(ctx, b, param, pschema, value)
    if variant == "refusal_full":  # a full slot takes no booking of any size: the details are not asked
        for fact in ctx.facts[details_from:]:
            fact.needed = False
    ctx.targets.append(Target(r.name, resource[r.pk], {shape.when_col: iso(moment)}, [], f"the {r.label} on {words}"))
    step = None if variant == "refusal_full" else ctx.chain.add(tool, args)
    details = [Detail("date", moment.date().isoformat()), Detail("time", iso(moment))]
    goal = WriteGoal(step if step is not None else -1, ["book", "reserve", "booking", "reservation", "sign you up",
                                                       "register"], details, [Detail("time", iso(near))],
                     f"book {'the' if limit == 1 else say.say_quantity(quantity, 'place') + ' on the'} {r.label} on {words}",
                     f"You are booked on the {r.label} on {words}.")
    thing = booking_object(r.label, quantity)
    some = thing if not thing.startswith("the ") else f"{article(r.label)} {r.label}"
    ask = f"I'd like to book {thing} on {words}." if opening_has_when else f"I'd like to book {some}."
    result = {"kind": "write", "goal": goal, "ask": ask, "restate": f"I'd like to book {thing} on {words}.",
              "motive": _motive(ctx, BOOK_MOTIVES, opening_has_when), "what": f"book {thing} on {words}",
              "swap": [[iso(moment), iso(near)]]}
    if variant == "refusal_full":
        literal = {k: (resource[r.pk] if _key_target(cat, tool, k) == r.name else
                       ctx.user_row[ctx.person.pk] if _key_target(cat, tool, k) == ctx.person.name else
                       owner[cat.tables[shape.own.through].pk] if shape.own.through and _key_target(cat, tool, k) == shape.own.through
                       else v) for k, v in args.items()}
        result.update(kind="refusal",
                      refusal=Refusal(reason=f"the {r.label} on {words} is full, with no places left",
                                      keywords=FULL_WORDS,
                                      forbidden={"tool": tool.name, "args": literal}, by="tool", rule="places left"))
    return result


def reschedule(ctx: Context, shape: BookingShape, variant: str = "write") -> dict[str, Any]:
    """Move one of the customer's bookings to another time. The policy's way: check that the new
    slot can take the booking, then cancel the old booking and book the new slot, with the same
    places and details (refusal: the new slot is full, so the old booking must stay as it is; an
    agent that cancels first loses the customer's booking)."""
    cat, b, r = ctx.catalog, shape.booking, shape.resource
    cancel, book_tool = cat.writer("cancel_booking", b.name), cat.writer("book", b.name)
    if cancel is None or book_tool is None or shape.search is None or shape.capacity is None:
        raise NotApplicable("no way to move a booking in this domain")
    make_customer(ctx)
    owner_key, owner = owner_ref(ctx, shape.own, b.label)
    owner_pk = owner[cat.tables[shape.own.through or ctx.person.name].pk]
    old = _future_slot(ctx)
    near_old = old + dt.timedelta(days=ctx.rng.randint(1, 9), hours=ctx.rng.choice((-2, -1, 1, 3)))
    near_olds = [near_old + dt.timedelta(days=7 * k) for k in range(ctx.near_misses)]
    new = _future_slot(ctx)
    while new.date() in {old.date(), *(m.date() for m in near_olds)}:  # each day holds one thing to find
        new = _future_slot(ctx)
    near_new = new + dt.timedelta(hours=ctx.rng.choice((-3, -2, 2, 3)))
    props = book_tool.parameters["properties"]
    limit = next((s.get("max") for s in book_tool.contract["steps"] if s.get("param") == "quantity" and "max" in s), 1)
    quantity = ctx.rng.randint(1, min(2, limit)) if "quantity" in props else 1
    template = next(iter((ctx.rows.state.get(b.name) or {}).values()), {})
    kept: dict[str, Any] = {}  # what the booking was made with (a visit's reason) goes to the new one unchanged
    for param, pschema in props.items():
        if param in book_tool.required and param != "quantity" and _key_target(cat, book_tool, param) is None:
            kept[param] = _value_for(ctx, b, param, pschema, template)
    _, booking = _booking_rows(ctx, shape, owner, ctx.rng.choice(OPEN_BOOKING), old,
                               f"the customer's {b.label} to be moved", quantity=quantity,
                               booking_values={k: v for k, v in kept.items() if k in b.columns})
    for moment in near_olds:
        _booking_rows(ctx, shape, owner, ctx.rng.choice(OPEN_BOOKING), moment, f"near miss: the customer's other {b.label}")
    values = {shape.when_col: iso(new), shape.capacity: 0 if variant == "refusal_full" else quantity + ctx.rng.randint(0, 3)}
    if r.machine and "open" in r.states:
        values["status"] = "open"
    _clear_instant(ctx, r.name, shape.when_col, iso(new))
    wanted = ctx.rows.add(r.name, f"the {r.label} the customer wants to move to", **values)
    _clear_instant(ctx, r.name, shape.when_col, iso(near_new))
    ctx.rows.add(r.name, f"near miss: another {r.label} that day", **{**values, shape.when_col: iso(near_new),
                                                                       shape.capacity: 4})

    # The careful agent's chain: the booking, then the new slot and its places, then both writes.
    booking_key = _find_booking(ctx, shape, owner_key, old)
    search_tool, day_param = shape.search
    found = ctx.chain.add(search_tool, {day_param: new.date().isoformat()})
    old_words, new_words = say.say_instant(iso(old), cat.today), say.say_instant(iso(new), cat.today)
    opening_has_when = ctx.rng.random() < 0.6 or variant != "write"
    when_fact(ctx, "when", b.label, iso(old), None, opening_has_when, "you want to move")
    ctx.fact(Fact("new_when", f"To {new_words}.", ["move it to", "move to", "moved to", "new time", "new date",
                                                  "new slot", "instead", "to when", "rather", "prefer", "reschedule",
                                                  "when", "date", "time", "day"],
                  f"You want to move it to the {r.label} on {new_words}.", "When would you like to move it to?",
                  [iso(new), iso(new)[:10]], opening=opening_has_when))
    if "quantity" in props:  # on the booking already: a careful agent keeps it without asking
        ctx.fact(Fact("places", "Just me, as before." if limit == 1 else
                      f"{say.say_quantity(quantity, 'place').capitalize()}, as before.",
                      PLACES_CUES,
                      "It is just for you, as before." if limit == 1 else
                      f"Your {b.label} is for {say.say_quantity(quantity, 'place')}; you want the same.",
                      "How many places would you like?", [quantity], needed=False))
    args: dict[str, Any] = {}
    literal: dict[str, Any] = {}
    for param in props:
        target = _key_target(cat, book_tool, param)
        if target == ctx.person.name:
            args[param], literal[param] = ctx.chain.user, ctx.user_row[ctx.person.pk]
        elif shape.own.through and target == shape.own.through:
            args[param], literal[param] = owner_key, owner_pk
        elif target == r.name:
            args[param], literal[param] = pick(found, {shape.when_col: iso(new)}, r.pk), wanted[r.pk]
        elif param == "quantity":
            args[param] = literal[param] = quantity
        elif param in kept:
            args[param] = literal[param] = kept[param]
            _describe_value_fact(ctx, b, param, props[param], kept[param])
            for f in ctx.facts:  # it is on the booking already
                if f.key.split("#")[0] == f"{b.name}.{param}" and f.values == [kept[param]]:
                    f.needed = False
    ctx.targets.append(_booking_target(ctx, shape, booking, owner_pk, old, f"the customer's {b.label} on {old_words}"))
    ctx.targets.append(Target(r.name, wanted[r.pk], {shape.when_col: iso(new)}, [], f"the {r.label} on {new_words}"))
    swap = [[iso(old), iso(near_old)], [old.date().isoformat(), near_old.date().isoformat()], [iso(new), iso(near_new)]]
    move = f"move your {b.label} on {old_words} to {new_words}"
    ask = (f"I'd like to move my {b.label} on {old_words} to {new_words}." if opening_has_when
           else f"I need to move one of my {b.label}s to another time.")
    result: dict[str, Any] = {"kind": "write", "ask": ask, "restate": f"I'd like to move my {b.label} on {old_words} to "
                                                                      f"{new_words}.",
                              "motive": _motive(ctx, RESCHEDULE_MOTIVES, opening_has_when), "what": move, "swap": swap}
    if variant == "refusal_full":
        result.update(kind="refusal", goal=WriteGoal(-1, ["move", "reschedule", "change"], _when_details(iso(new), None),
                                                     [], move, ""),
                      refusal=Refusal(reason=f"the {r.label} on {new_words} is full, with no places left, so your "
                                             f"{b.label} on {old_words} stays as it is",
                                      keywords=FULL_WORDS, forbidden={"tool": book_tool.name, "args": literal},
                                      by="tool", rule="places left"))
        return result
    cancel_step = ctx.chain.add(cancel, {cat.key_param(cancel, b.name): booking_key})
    book_step = ctx.chain.add(book_tool, args)
    result["goals"] = [
        WriteGoal(cancel_step, ["cancel", "call off", "cancellation", "move", "reschedule"], _when_details(iso(old), None),
                  _when_details(iso(near_old), None)[:1], f"cancel your {b.label} on {old_words}",
                  f"Your {b.label} on {old_words} is now cancelled."),
        WriteGoal(book_step, ["book", "reserve", "booking", "reservation", "move", "reschedule"],
                  [Detail("date", new.date().isoformat()), Detail("time", iso(new))], [Detail("time", iso(near_new))],
                  f"book {booking_object(r.label, quantity)} on {new_words} in its place",
                  f"You are booked on the {r.label} on {new_words} instead.")]
    return result


def _key_target(cat: Catalog, tool: ToolView, param: str) -> str | None:
    keys = tool.subject.get("keys") or {}
    if param in keys:
        return keys[param]
    for step in tool.contract["steps"]:
        if step["op"] == "load" and step.get("key") == {"param": param}:
            return step["table"]
    return None


def _value_for(ctx: Context, table: TableView, column: str, schema: dict[str, Any], template: dict[str, Any]) -> Any:
    if column in TEXTS or schema.get("type") == "string" and table.columns.get(column, {}).get("policy") == "semantic":
        key = "return_reason" if column == "reason" and ("return" in table.name or "refund" in table.name) else column
        pool = TEXTS.get(f"{table.name}.{column}") or TEXTS.get(key) or next(
            (v for k, v in TEXTS.items() if "." not in k and (k in column or column in k)), None)
        return ctx.rng.choice(pool or TEXTS["comment"])
    if "enum" in schema:
        return ctx.rng.choice(schema["enum"])
    if schema.get("format") == "date":
        return (ctx.catalog.today + dt.timedelta(days=ctx.rng.randint(5, 40))).isoformat()
    if schema.get("format") == "date-time":
        return iso(_future_slot(ctx))
    if schema.get("type") == "integer":
        low, high = int(schema.get("minimum", 1)), int(schema.get("maximum", 5))
        return ctx.rng.randint(max(low, 1), max(max(low, 1), min(high, 5)))
    if schema.get("type") == "number":
        if column.endswith("hours"):  # time worked: half hours in a working day
            return ctx.rng.choice([h / 2 for h in range(1, 17)])
        return round(ctx.rng.uniform(5, 80), 2)
    if schema.get("type") == "boolean":
        return ctx.rng.random() < 0.5
    value = template.get(column)
    if isinstance(value, str) and value:
        return value
    raise NotApplicable(f"no value for {table.name}.{column}")


def _describe_value_fact(ctx: Context, table: TableView, column: str, schema: dict[str, Any], value: Any) -> None:
    words = column.replace("_", " ")
    today = ctx.catalog.today
    if isinstance(value, bool):
        said = "Yes." if value else "No."
    elif schema.get("format") == "date":
        said = f"{say.say_date(value, today)}."
    elif schema.get("format") == "date-time":
        said = f"{say.say_instant(value, today)}."
    elif isinstance(value, (int, float)):  # 7, not 7.0
        said = f"{int(value) if float(value).is_integer() else value}."
    elif "enum" in schema:
        said = f"{say.humanize(value).capitalize()}."
    else:
        said = f"{value}."
    asked = [w for w in column.split("_") if len(w) > 2] + list(_SYNONYMS.get(column, ()))
    known, question = f"The {words} is {say.humanize(value)}.", f"What should the {words} be?"
    if schema.get("format") in ("date", "date-time"):  # as the user says it, not ISO
        known = f"The {words} is {said[:-1]}."
        if words.endswith(" on"):  # worked_on: "Which day was it worked on?"
            known, question = f"It was {words} {said[:-1]}.", f"Which day was it {words}?"
    elif isinstance(value, str) and "enum" not in schema:  # free text, quoted so it reads as one value
        known, question = f'The {words} is "{value}".', f"What is the {words}?"
        if column in WORDED_COLUMNS:  # what the customer writes: "What would you like it to say?"
            known, question = f'You want it to say "{value}".', "What would you like it to say?"
            asked = asked + ["say", "write", "wording", "text", "message"]
    if isinstance(value, bool):  # "Should it be pinned?", not "What should the pinned be?"
        quality = words.removeprefix("is ")
        known = f"You want it {quality}." if value else f"You do not want it {quality}."
        question = f"Should it be {quality}?"
    elif isinstance(value, (int, float)) and _counted(words):  # "It is 5 stars", not "The stars is 5"
        known, question = f"It is {said[:-1]} {words}.", f"How many {words}?"
    ctx.fact(Fact(f"{table.name}.{column}", said, asked, known, question, [value]))


# How an agent asks how many places a booking takes ("Will anyone be joining you?").
PLACES_CUES = ["how many", "places", "people", "seats", "spots", "just for you", "anyone", "joining", "party",
               "coming with", "only you", "for yourself"]

# Free-text columns whose value is the customer's own words (a message, a comment), asked for as such
# rather than by the column's name ("What should the body be?").
WORDED_COLUMNS = frozenset({"body", "comment", "content", "text", "message", "memo", "note", "change_note",
                            "answer_text", "cover_letter"})


def _counted(words: str) -> bool:
    """A column named by a plural noun (stars, nights, guests): its value is a count of them."""
    last = words.split()[-1]
    return len(last) > 3 and last.endswith("s") and not last.endswith(("ss", "us", "is", "status"))


_SYNONYMS = {"reason": ("why", "what for", "purpose", "symptom", "visit for", "appointment for", "is it for",
                        "booking for"), "issue": ("problem", "wrong", "what happened"),
             "summary": ("what happened", "describe", "details"), "details": ("what happened", "describe"),
             "comment": ("review", "think", "feedback", "say"), "stars": ("rating", "rate", "score", "out of"),
             "severity": ("severe", "serious", "bad"), "priority": ("urgent", "urgency"),
             "nights": ("how long", "how many nights"), "check_in": ("arrive", "arrival", "when"),
             "body_part": ("where", "injured", "injury", "hurt", "which part"),
             "worked_on": ("which day", "what day", "date", "when", "work done")}


# ---------------------------------------------------------------------------------------------
# Bills


@dataclass
class BillShape:
    invoice: TableView
    own: Any
    due: str
    issued: str
    pay: ToolView | None
    exact: bool


def bill_shapes(cat: Catalog) -> list[BillShape]:
    shapes = []
    for t in cat.tables.values():
        if t.role != "invoice" or not t.machine:
            continue
        own = cat.ownership(t.name)
        due = cat.money_column(t)
        issued = next((c for c in ("issued_on", "created_at") if c in t.columns), None)
        if own is None or own.through is not None or due is None or issued is None:
            continue
        if cat.lister(t.name, cat.person.name) is None:
            continue
        pay = cat.writer("pay", t.name)
        exact = bool(pay) and any(s["op"] == "require" and "eq" in s["cond"] and {"param": "amount"} in s["cond"]["eq"]
                                  for s in pay.contract["steps"])
        shapes.append(BillShape(t, own, due, issued, pay, exact))
    return shapes


def _bill(ctx: Context, shape: BillShape, status: str, amount: float, day: dt.date, why: str) -> dict[str, Any]:
    value = day.isoformat() if shape.invoice.columns[shape.issued]["type"] == "date" else iso(
        dt.datetime(day.year, day.month, day.day, 10, 0, tzinfo=dt.timezone.utc))
    return ctx.rows.add(shape.invoice.name, why, **{shape.own.fk: ctx.user_row[ctx.person.pk], "status": status,
                                                    shape.due: amount, shape.issued: value})


def _bill_where(shape: BillShape, day: dt.date) -> dict[str, Any]:
    return {shape.issued: day.isoformat() if shape.invoice.columns[shape.issued]["type"] == "date"
            else {"$on": day.isoformat()}}


def _distinct_days(ctx: Context, n: int) -> list[dt.date]:
    days: list[dt.date] = []
    while len(days) < n:
        day = ctx.catalog.today - dt.timedelta(days=ctx.rng.randint(3, 120))
        if day not in days:
            days.append(day)
    return days


def pay_bill(ctx: Context, shape: BillShape, variant: str = "write") -> dict[str, Any]:
    """Pay one of the customer's bills, in full or in part (refusal: the bill is void)."""
    cat, inv = ctx.catalog, shape.invoice
    tool = shape.pay
    if tool is None:
        raise NotApplicable("no payment tool")
    make_customer(ctx)
    amount = round(ctx.rng.uniform(60, 900), 2)
    day, near_day, paid_day = _distinct_days(ctx, 3)
    status = "void" if variant == "refusal_void" else ctx.rng.choice(OPEN_INVOICE)
    bill = _bill(ctx, shape, status, amount, day, "the bill the task is about")
    near_amount = round(amount + ctx.rng.choice((-1, 1)) * ctx.rng.uniform(5, 40), 2)
    _bill(ctx, shape, "issued", near_amount, near_day, "near miss: another open bill of a similar amount")
    _bill(ctx, shape, "paid", round(ctx.rng.uniform(30, 400), 2), paid_day, "another bill, already paid")
    lister, param = cat.lister(inv.name, ctx.person.name)
    listed = ctx.chain.add(lister, {param: ctx.chain.user})
    today = cat.today
    day_words = say.say_date(day, today)
    ctx.fact(Fact("which_bill", f"The one from {day_words}.", ["which", "when", "date", "bill", "invoice", inv.label],
                  f"The {inv.label} is from {day_words}.", f"Which {inv.label} is it? When was it issued?", [day.isoformat()],
                  opening=True))  # "I'd like to pay my fee invoice from 9 February": the ask names the day
    ctx.targets.append(Target(inv.name, bill[inv.pk], {shape.own.fk: ctx.user_row[ctx.person.pk], **_bill_where(shape, day)},
                              [], f"the customer's {inv.label} from {day_words}"))
    full = shape.exact or variant != "write" or ctx.rng.random() < 0.5
    paying = amount if full else round(min(amount - 1, max(10.0, round(amount * ctx.rng.uniform(0.3, 0.7)))), 0)
    args: dict[str, Any] = {}
    method_value = None
    other_methods: list[str] = []
    for p, pschema in tool.parameters["properties"].items():
        if _key_target(cat, tool, p) == inv.name:
            args[p] = pick(listed, _bill_where(shape, day), inv.pk)
        elif p == "amount":
            args[p] = pick(listed, _bill_where(shape, day), shape.due) if full else paying
        elif "enum" in pschema and p in tool.required:
            method_value = ctx.rng.choice(pschema["enum"])
            other_methods = [m for m in pschema["enum"] if m != method_value]
            args[p] = method_value
    # A void bill cannot be paid however much or by what: a careful agent does not ask (it still may).
    asked = variant == "write"
    if full:
        ctx.fact(Fact("how_much", "All of it, please.", ["how much", "full", "whole", "part", "partial", "amount"],
                      f"You want to pay the whole {inv.label}.", "How much would you like to pay?", [],
                      needed=asked))
    else:
        ctx.fact(Fact("how_much", f"{say.say_money(paying)} for now, please.", ["how much", "full", "whole", "part",
                                                                               "amount"],
                      f"You want to pay {say.say_money(paying)} now and the rest later.",
                      "How much would you like to pay?", [paying], needed=asked))
    if method_value is not None:
        ctx.fact(Fact("method", f"By {say.humanize(method_value)}.", ["how would you like to pay", "pay by", "pay with",
                                                                       "payment method", "card", "cash", "how will you pay",
                                                                       "paying", "method"],
                      f"You pay by {say.humanize(method_value)}.", "How would you like to pay?", [method_value],
                      needed=asked))
    step = None if variant != "write" else ctx.chain.add(tool, args)
    goal = WriteGoal(step if step is not None else -1, ["pay", "payment", "settle", "charge"],
                     [Detail("money", paying), Detail("date", day.isoformat())],
                     [Detail("date", near_day.isoformat())] + [Detail("words", say.humanize(m)) for m in other_methods],
                     f"pay {say.say_money(paying)} by {say.humanize(method_value or 'card')} on your {inv.label} from {day_words}",
                     f"Your payment of {say.say_money(paying)} on the {inv.label} from {day_words} is recorded.")
    result = {"kind": "write", "goal": goal, "ask": f"I'd like to pay my {inv.label} from {day_words}.",
              "restate": f"I'd like to pay my {inv.label} from {day_words}.", "motive": ctx.rng.choice(PAY_MOTIVES),
              "what": f"pay your {inv.label} from {day_words}", "swap": [[day.isoformat(), near_day.isoformat()]]}
    if variant == "refusal_void":
        literal = {k: (bill[inv.pk] if _key_target(cat, tool, k) == inv.name else amount if k == "amount" else v)
                   for k, v in args.items()}
        # a void bill sends no reminder: the customer found it among their bills and wants it cleared
        result.update(kind="refusal", ask=f"I'd like to pay my {inv.label} from {day_words}, all of it.",
                      motive=("I want to be sure nothing is left unpaid", "you want to be sure nothing is left unpaid"),
                      refusal=Refusal(reason=f"that {inv.label} is void, so it cannot be paid",
                                      keywords=["void", "voided", "cancelled", "canceled", "annulled", "not open",
                                                "no longer valid", "nothing to pay", "no payment is due", "invalid"],
                                      forbidden={"tool": tool.name, "args": literal}, by="tool", rule="void"))
    return result


# ---------------------------------------------------------------------------------------------
# Profile


def _new_contact(ctx: Context, column: str, row: dict[str, Any]) -> tuple[str, str, Detail]:
    """A new value of ``column`` for the person of ``row``: (value, how they say it, how they
    recognize it in a proposal). A new e-mail keeps the person's own name in it."""
    from environments.synthesis.values import CITIES, STREETS

    current = row.get(column)
    if column == "city":
        new = ctx.rng.choice([c for c in CITIES if c != current])
        return new, f"I've moved to {new}.", Detail("words", new)
    if column == "phone":
        new = f"+1-555-{ctx.rng.randint(100, 999)}-{ctx.rng.randint(1000, 9999)}"
        return new, f"My new number is {new}.", Detail("words", new.split("-")[-1])
    if column == "address":
        new = f"{ctx.rng.randint(1, 220)} {ctx.rng.choice(STREETS)}"
        return new, f"I now live at {new}.", Detail("words", new)
    new = ctx.rows.another_email(ctx.person, column, str(current or ""))
    return new, f"My new e-mail is {new}.", Detail("words", new)


def update_profile(ctx: Context, variant: str = "write") -> dict[str, Any]:
    """Change one of the customer's contact details (refusal: a friend's)."""
    cat, person = ctx.catalog, ctx.person
    tool = next((t for t in cat.view.tools_for("update", person.name)), None)
    if tool is None:
        raise NotApplicable("no profile update tool")
    email_col = cat.email_column(person)  # "email", or "contact_email" for a company's contact
    settable = [c for c in ("city", "phone", "address", email_col) if c and c in tool.parameters["properties"]
                and c in person.columns]
    if not settable:
        raise NotApplicable("no contact column can be changed")
    make_customer(ctx)
    column = ctx.rng.choice(settable)
    # The customer's words for the detail: never the column's own name (the leak audit checks).
    words = {"city": "home town", "phone": "contact number", "address": "postal details"}.get(column, "e-mail")
    shown = column if column in ("city", "phone", "address", "email") else "e-mail"
    key = cat.key_param(tool, person.name)
    if variant == "refusal_other":
        friend = make_person(ctx, "the friend whose details the customer asks to change")
        fname = str(friend.get(cat.name_column(person)))
        whose = possessive(fname)
        new, said, detail = _new_contact(ctx, column, friend)
        fw = ctx.other_word
        ctx.fact(Fact("friend", f"My {fw} is {fname}.", ["friend", "partner", "whose", "their name", "who is"],
                      f"Your {fw} {fname} asked you to update their {words}.", f"What is your {fw}'s name?", [fname],
                      opening=True))
        ctx.fact(Fact("new_value", said.replace("I've", "They have").replace("My", "Their").replace("I now", "They now"),
                      ["new", "what should", "change it to", column, words], f"The new value is {new}.",
                      f"What is the new {words}?", [new], needed=False))  # refused whatever the value
        return {"kind": "refusal", "ask": f"Could you update my {fw} {whose} {words} on their account? "
                                          "They asked me to.",
                "goal": WriteGoal(-1, ["update", "change", "set"], [detail], [], f"update {whose} {words}", ""),
                "restate": f"I'd like you to update {whose} {words}.", "what": f"update your {fw} {whose} {words}",
                "motive": (("their contact is away today", "their contact is away today") if fw != "friend" else
                           ("they don't have time today", "your friend does not have time today")), "swap": None,
                "refusal": Refusal(reason=(f"only {fname} can change their own account details" if fw == "friend" else
                                           f"only {possessive(fname)} own contact can change its account details"),
                                   keywords=REFUSE_OTHER, forbidden={"tool": tool.name, "args": {key: friend[person.pk], column: new}},
                                   by="policy", rule="another person")}
    new, said, detail = _new_contact(ctx, column, ctx.user_row)
    email_words = ["email", "e-mail", "mail"] if column == email_col else []
    ctx.fact(Fact("new_value", said, ["new", "what should", "change it to", "what is the", column, words, *email_words],
                  f"Your new {words} is {new}.", f"What is the new {words}?", [new]))
    step = ctx.chain.add(tool, {key: ctx.chain.user, column: new})
    goal = WriteGoal(step, ["update", "change", "set", "replace", "edit"], [detail], [],
                     f"update your {shown} to {new}", f"Your {shown} is now {new}.")
    other = make_person(ctx, "near miss: another customer (a different e-mail address)")
    return {"kind": "write", "goal": goal, "ask": f"I need to update my {words} on my account.",
            "restate": f"I just need my {words} updated.", "motive": ("my details have changed", "your details changed"),
            "what": f"update your {words}", "swap": [[ctx.user_row[email_col], other[email_col]]]}


# ---------------------------------------------------------------------------------------------
# Requests, reports and reviews (creating a record)


def create_shapes(cat: Catalog) -> list[tuple[TableView, ToolView]]:
    shapes = []
    for t in cat.tables.values():
        if t.role not in ("record",) or t.name == (cat.person.name if cat.person else None):
            continue
        tool = cat.writer("create", t.name)
        if tool is None:
            continue
        if not any(spec.get("policy") == "semantic" for spec in t.columns.values()):
            continue
        keys = {p: _key_target(cat, tool, p) for p in tool.parameters["properties"]}
        keys = {p: k for p, k in keys.items() if k}
        if not keys or not all(k == cat.person.name or _resolvable(cat, k) for k in keys.values()):
            continue
        shapes.append((t, tool))
    return shapes


def _resolvable(cat: Catalog, table: str) -> bool:
    """A row of ``table`` the customer can point at: one they own (by name) or a public one (by name)."""
    t = cat.tables[table]
    own = cat.ownership(table)
    name = cat.name_column(t)
    if name is None:
        return False
    if own is not None and own.through is None:
        return cat.lister(table, cat.person.name) is not None
    return cat.search(table, "contains", name) is not None


def create_record(ctx: Context, shape: tuple[TableView, ToolView], variant: str = "write") -> dict[str, Any]:
    """File a request, report or review about something of the customer's."""
    cat = ctx.catalog
    table, tool = shape
    make_customer(ctx)
    args: dict[str, Any] = {}
    details: list[Detail] = []
    swaps: list[list[Any]] = []
    mention = ""
    wording = record_wording(table.label)
    for param, pschema in tool.parameters["properties"].items():
        target = _key_target(cat, tool, param)
        if target == ctx.person.name:
            args[param] = ctx.chain.user
        elif target:
            ref, name, label, other = _point_at(ctx, target)
            args[param] = ref
            details.append(Detail("words", name))
            swaps.append([name, other])
            mention = f" {wording[1]} {'my' if cat.ownership(target) else 'the'} {label} {name}"
        elif param in tool.required:
            value = _value_for(ctx, table, param, pschema, {})
            args[param] = value
            _describe_value_fact(ctx, table, param, pschema, value)
            if "enum" in pschema:
                details.append(Detail("words", say.humanize(value)))
    step = ctx.chain.add(tool, args)
    if not swaps:  # nothing of the customer's to mix up: the near miss is another customer's account
        other = make_person(ctx, "near miss: another customer (a different e-mail address)")
        email_col = cat.email_column(ctx.person)
        swaps.append([ctx.user_row[email_col], other[email_col]])
    verbs = ["create", "file", "open", "submit", "log", "register", "report", "add", "leave", "post", "raise",
             "record", "send", "make"]
    label = table.label
    verb, _about, done = wording
    thing = f"{verb} {article(label)} {label}{mention}"
    # the agent's proposal: in its own voice ("your portfolio"), each detail once
    proposal = thing.replace(" my ", " your ")
    said = ", ".join(d.value for d in details if d.kind == "words" and d.value not in proposal)
    goal = WriteGoal(step, verbs, details, [], proposal + (f" ({said})" if said else ""),
                     f"Your {label} is {done}.")
    return {"kind": "write", "goal": goal, "ask": f"I'd like to {thing}.", "restate": f"I'd like to {thing}.",
            "motive": ("I want it on record", "you want it on record"),
            "what": proposal, "swap": swaps}



# How a customer says they make a record of a kind: (verb, preposition before what it concerns,
# participle when it is made), by words of the record's label; the last line is the default.
RECORD_WORDING: list[tuple[tuple[str, ...], tuple[str, str, str]]] = [
    (("review", "critique", "feedback", "comment", "rating"), ("leave", "about", "posted")),
    (("application", "submission"), ("submit", "for", "submitted")),
    (("revision", "edit", "change request"), ("submit", "to", "submitted")),
    (("message",), ("send", "in", "sent")),
    (("post",), ("add", "to", "added")),
    (("timesheet", "time entry", "time log"), ("log", "for", "logged")),
    (("booking", "reservation"), ("make", "with", "made")),
    ((), ("file", "about", "filed")),
]


def record_wording(label: str) -> tuple[str, str, str]:
    return next(wording for words, wording in RECORD_WORDING if not words or any(w in label for w in words))


def _point_at(ctx: Context, table: str) -> tuple[dict[str, Any], str, str, str]:
    """A gold reference to a row of ``table`` the customer names (the row is in s0), its name, its
    label, and the name of the nearest other row (the near miss)."""
    cat = ctx.catalog
    t = cat.tables[table]
    name_col = cat.name_column(t)
    own = cat.ownership(table)
    if own is not None and own.through is None:
        row = ctx.rows.add(table, f"the customer's {t.label} the request is about", **{own.fk: ctx.user_row[ctx.person.pk]})
        name = str(row[name_col])
        if sum(1 for r in ctx.rows.state[table].values() if r.get(own.fk) == row[own.fk]
               and str(r.get(name_col)) == name) > 1:
            raise NotApplicable("two of the customer's rows share a name")
        tool, param = cat.lister(table, ctx.person.name)
        step = ctx.chain.add(tool, {param: ctx.chain.user})
        ctx.fact(Fact(f"{table}:name", f"It's about my {t.label} {name}.", [t.label, "which", "what is it about"],
                      f"It concerns your {t.label} {name}.", f"Which {t.label} is it about?", [name]))
        ctx.targets.append(Target(table, row[t.pk], {own.fk: row[own.fk], name_col: name}, [], f"the customer's {t.label} {name}"))
        other = ctx.rows.add(table, f"near miss: the customer's other {t.label}", **{own.fk: row[own.fk]})
        if str(other[name_col]) == name:
            raise NotApplicable("the near miss would share the name")
        return pick(step, {name_col: name}, t.pk), name, t.label, str(other[name_col])
    rows = list(ctx.rows.state[table].values())
    counts: dict[str, int] = {}
    for r in rows:
        counts[str(r.get(name_col))] = counts.get(str(r.get(name_col)), 0) + 1
    unique = sorted(n for n, c in counts.items() if c == 1)
    if not unique:
        raise NotApplicable(f"no {t.label} has a name of its own")
    name = ctx.rng.choice(unique)
    row = next(r for r in rows if str(r.get(name_col)) == name)
    tool, param = cat.search(table, "contains", name_col)
    # A near miss the same search finds: another row whose name shares the searched word.
    from environments.synthesis.values import title_twin

    twinned = title_twin(name, ctx.rng)
    if twinned is None or twinned[0] in counts:
        raise NotApplicable("no near miss can be named")
    twin, word = twinned
    ctx.rows.add(table, f"near miss: another {t.label} with a similar name", **{name_col: twin})
    counts[twin] = 1
    unique.append(twin)
    step = ctx.chain.add(tool, {param: word})
    ctx.fact(Fact(f"{table}:name", f"The {name}.", [t.label, "which", "what is it about", "name"],
                  f"It is about the {t.label} called {name}.", f"Which {t.label} is it about?", [name, word]))
    ctx.targets.append(Target(table, row[t.pk], {name_col: name}, [], f"the {t.label} {name}"))
    return pick(step, {name_col: name}, t.pk), name, t.label, twin


# ---------------------------------------------------------------------------------------------
# Questions


def bill_question(ctx: Context, shape: BillShape, variant: str = "balance") -> dict[str, Any]:
    """How much is left on one bill, or on all open bills together (a computation)."""
    cat, inv = ctx.catalog, shape.invoice
    make_customer(ctx)
    days = _distinct_days(ctx, 4)
    amounts = [round(ctx.rng.uniform(40, 700), 2) for _ in days]
    statuses = ["issued", "partially_paid", "paid", "void"] if variant == "total" else ["issued", "issued", "paid", "issued"]
    ctx.rng.shuffle(statuses)
    for day, amount, status in zip(days, amounts, statuses):
        _bill(ctx, shape, status, amount, day, "one of the customer's bills")
    lister, param = cat.lister(inv.name, ctx.person.name)
    listed = ctx.chain.add(lister, {param: ctx.chain.user})
    owner = {shape.own.fk: ctx.user_row[ctx.person.pk]}
    swap = None
    if variant == "total":
        source = {"$sum": [listed, "items", {"status": {"$in": list(OPEN_INVOICE)}}], "$get": shape.due}
        swap = [[list(OPEN_INVOICE), list(OPEN_INVOICE) + ["paid", "void"]]]  # the near miss: every bill
        value = round(sum(a for a, s in zip(amounts, statuses) if s in OPEN_INVOICE), 2)
        label = f"the total left to pay on your open {inv.label}s"
        ask = f"How much do I still owe in total on my open {inv.label}s?"
        template = f"In total you still owe {{value}} on your open {inv.label}s."
    else:
        i = next(k for k, s in enumerate(statuses) if s == "issued")
        day = days[i]
        source = pick(listed, _bill_where(shape, day), shape.due)
        value = amounts[i]
        words = say.say_date(day, cat.today)
        label = f"the amount left on your {inv.label} from {words}"
        ask = f"How much is still left to pay on my {inv.label} from {words}?"
        template = f"You still owe {{value}} on your {inv.label} from {words}."
        other = next(d for k, d in enumerate(days) if k != i and statuses[k] != "void")
        swap = [[day.isoformat(), other.isoformat()]]
        ctx.fact(Fact("which_bill", f"The one from {words}.", ["which", "when", "date", "bill", "invoice", inv.label],
                      f"The {inv.label} is from {words}.", f"Which {inv.label} is it?", [day.isoformat()], opening=True))
        ctx.targets.append(Target(inv.name, [r for r in ctx.rows.state[inv.name].values() if r.get(shape.due) == value
                                             and r.get(shape.own.fk) == owner[shape.own.fk]][0][inv.pk],
                                  {**owner, **_bill_where(shape, day)}, [], f"the {inv.label} from {words}"))
    answer = Answer("money", value, label, source, template)
    return {"kind": "question", "answer": answer, "ask": ask, "restate": ask, "motive": QUESTION_MOTIVES[0],
            "what": f"know {label}", "say": f"It is {say.say_money(value)}.", "swap": swap}


def booking_question(ctx: Context, shape: BookingShape) -> dict[str, Any]:
    """Who or what one of the customer's bookings is with (needs three lookups)."""
    cat, b, r = ctx.catalog, shape.booking, shape.resource
    provider_fk = next((c for c, target in r.fks().items() if cat.tables[target].role in ("provider", "place")
                        and cat.name_column(cat.tables[target])), None)
    if shape.search is None or provider_fk is None:
        raise NotApplicable("the booking has no provider or place to ask about")
    provider = cat.tables[r.fks()[provider_fk]]
    if len(ctx.rows.state.get(provider.name) or {}) < 2:
        raise NotApplicable("only one provider: the question would answer itself")
    getter = cat.getter(provider.name)
    name_col = cat.name_column(provider)
    if getter is None or name_col is None:
        raise NotApplicable("the provider cannot be looked up")
    make_customer(ctx)
    owner_key, owner = owner_ref(ctx, shape.own, b.label)
    moment = _future_slot(ctx)
    resource, booking = _booking_rows(ctx, shape, owner, "confirmed", moment, f"the customer's {b.label} asked about")
    near = moment + dt.timedelta(days=ctx.rng.randint(1, 6))
    elsewhere = sorted(pk for pk in ctx.rows.state[provider.name] if pk != resource[provider_fk])
    _booking_rows(ctx, shape, owner, "confirmed", near, f"near miss: the customer's other {b.label}",
                  resource_values={provider_fk: ctx.rng.choice(elsewhere)})
    pv = ctx.rows.state[provider.name][resource[provider_fk]]
    name = str(pv[name_col])
    if re.fullmatch(r"[A-Z0-9-]{4,}", name):  # "ZMAGFZ": a code on a door, not where a customer says they go
        raise NotApplicable(f"the {provider.label} is known by a code, not a name")
    lister, list_param = cat.lister(b.name, shape.own.through or ctx.person.name)
    listed = ctx.chain.add(lister, {list_param: owner_key})
    search_tool, day_param = shape.search
    found = ctx.chain.add(search_tool, {day_param: moment.date().isoformat()})
    slot = pick(found, {shape.when_col: iso(moment), r.pk: {"$in": every(listed, {}, shape.rfk)}}, provider_fk)
    tool, key = getter
    got = ctx.chain.add(tool, {key: slot})
    words = say.say_instant(iso(moment), cat.today)
    owner_pk = owner[cat.tables[shape.own.through or ctx.person.name].pk]
    ctx.targets.append(_booking_target(ctx, shape, booking, owner_pk, moment, f"the customer's {b.label} on {words}"))
    when_fact(ctx, "when", b.label, iso(moment), None, True, "you are asking about")
    if provider.role == "provider":
        answer = Answer("words", name, f"who your {b.label} on {words} is with", {"$ref": [got, name_col]},
                        f"Your {b.label} on {words} is with {{value}}.")
        ask = f"Who is my {b.label} on {words} with? I can't remember."
        what = f"know who your {b.label} on {words} is with"
    else:
        answer = Answer("words", name, f"where your {b.label} on {words} is", {"$ref": [got, name_col]},
                        f"Your {b.label} on {words} is at {{value}}.")
        ask = f"Where is my {b.label} on {words}? I can't remember."
        what = f"know where your {b.label} on {words} is"
    return {"kind": "question", "answer": answer, "ask": ask, "restate": ask, "motive": QUESTION_MOTIVES[1],
            "what": what, "say": f"It is {name}.",
            "swap": [[iso(moment), iso(near)], [moment.date().isoformat(), near.date().isoformat()]]}


# ---------------------------------------------------------------------------------------------
# Requests that are followed up or closed (a ticket machine: open -> in progress -> resolved -> reopened;
# the customer may close one at any of the first three)


@dataclass
class TicketShape:
    table: TableView
    own: Any
    text: str  # the free-text column that tells the customer's requests apart ("issue")
    reopen: ToolView | None  # the transition from resolved back to the initial state
    close: ToolView | None = None  # the transition a customer takes when they no longer need it


def ticket_shapes(cat: Catalog) -> list[TicketShape]:
    """Records with a request's life cycle that the customer owns and can list, told apart by their text."""
    shapes = []
    for t in cat.tables.values():
        machine = t.machine or {}
        initial = machine.get("initial")
        if t.role != "record" or not initial or "resolved" not in t.states or any(
                w in t.label for w in ("comment", "feedback", "review", "message", "post", "critique")):
            continue  # what is followed up is a request or a report, not something said
        own = cat.ownership(t.name)
        if own is None or cat.lister(t.name, own.through or cat.person.name) is None:
            continue
        text = next((c for c, spec in t.columns.items() if spec.get("policy") == "semantic"
                     and spec.get("type") in ("string", "text") and not spec.get("nullable")), None)
        if text is None:
            continue
        reopen = next((tool for tool in cat.view.tools_for("transition", t.name)
                       if tool.subject.get("transition", {}).get("to") == initial
                       and "resolved" in tool.subject.get("transition", {}).get("from", [])), None)
        close = next((tool for tool in cat.view.tools_for("transition", t.name)
                      if tool.subject.get("transition", {}).get("to") == "closed"), None)
        shapes.append(TicketShape(t, own, text, reopen, close))
    return shapes


def _ticket_rows(ctx: Context, shape: TicketShape, owner: dict[str, Any], statuses: list[str]) -> list[dict[str, Any]]:
    """The customer's requests, one per status given, each about something else (the first is the target)."""
    cat, t = ctx.catalog, shape.table
    pool = list(dict.fromkeys(_value_for(ctx, t, shape.text, {"type": "string"}, {}) for _ in range(40)))
    if len(pool) < 2:
        raise NotApplicable(f"one text only for {t.name}.{shape.text}")
    ctx.rng.shuffle(pool)
    owner_pk = owner[cat.tables[shape.own.through or ctx.person.name].pk]
    rows = []
    for n, (status, text) in enumerate(zip(statuses, pool)):
        why = f"the customer's {t.label} the task is about" if n == 0 else f"near miss: the customer's other {t.label}"
        rows.append(ctx.rows.add(t.name, why, **{shape.own.fk: owner_pk, shape.text: text, "status": status}))
    return rows


def _customer_requests(ctx: Context, shape: TicketShape,
                       statuses: Callable[[], list[str]]) -> tuple[dict[str, Any], dict[str, Any], int]:
    """A new customer with requests at ``statuses()`` (the first is the one the task is about, the
    next its near miss) and the gold step that lists them: (target, near miss, list step)."""
    cat, t = ctx.catalog, shape.table
    make_customer(ctx)
    owner_key, owner = owner_ref(ctx, shape.own, t.label)
    rows = _ticket_rows(ctx, shape, owner, statuses())
    if len(rows) < 2:
        raise NotApplicable("no near miss")
    tool, param = cat.lister(t.name, shape.own.through or ctx.person.name)
    return rows[0], rows[1], ctx.chain.add(tool, {param: owner_key})


def _which_request(ctx: Context, shape: TicketShape, text: str, opening: bool) -> None:
    label = shape.table.label
    ctx.fact(Fact("which", f'It was about this: "{text}".', ["which", "what was it about", "about", "describe",
                                                             "what is it", "issue", "problem", label],
                  f'Your {label} says "{text}".', f"Which {label} is it? What was it about?", [text], opening=opening))


def reopen_request(ctx: Context, shape: TicketShape, variant: str = "write") -> dict[str, Any]:
    """Reopen one of the customer's requests that was marked resolved but is not sorted out
    (refusal: it was never resolved, it is still being worked on, so there is nothing to reopen)."""
    cat, t = ctx.catalog, shape.table
    if shape.reopen is None:
        raise NotApplicable("no way to reopen a request")
    # still being worked on: a closed one was not "closed before it was sorted out" by the staff
    unresolved = [s for s in t.states if s not in shape.reopen.subject["transition"]["from"] and s != "closed"]
    if variant == "refusal_unresolved" and not unresolved:
        raise NotApplicable("every state can be reopened")
    target, near, listed = _customer_requests(ctx, shape, lambda: [
        ctx.rng.choice(unresolved) if variant == "refusal_unresolved" else "resolved"] + ["resolved"] * ctx.near_misses)
    status = target["status"]
    text, other = target[shape.text], near[shape.text]
    reopen_key = cat.key_param(shape.reopen, t.name)
    opening_has_text = ctx.rng.random() < 0.5 or variant != "write"
    _which_request(ctx, shape, text, opening_has_text)
    ctx.targets.append(Target(t.name, target[t.pk], {shape.text: text, "status": status,
                                                     shape.own.fk: target[shape.own.fk]}, [],
                              f"the customer's {t.label} \"{text}\""))
    if variant == "refusal_unresolved":
        now = say.humanize(status)
        return {"kind": "refusal",
                "goal": WriteGoal(-1, ["reopen", "re-open", "open it again", "open again"], [Detail("words", text)], [],
                                  f'reopen your {t.label} "{text}"', ""),
                "ask": f"My {t.label} about \"{text}\" seems to have been closed, but it isn't sorted out. "
                       "Could you reopen it?",
                "restate": f'I want my {t.label} "{text}" reopened.',
                "motive": ("I haven't heard anything for a while", "you have not heard anything for a while"),
                "what": f'reopen your {t.label} "{text}"', "swap": [[text, other]],
                "refusal": Refusal(reason=f"that {t.label} was never resolved (it is still {now}), and only a resolved "
                                          f"{t.label} can be reopened",
                                   keywords=["never resolved", "not resolved", "still open", "still in progress",
                                             "in progress", "is open", "being worked on", "only a resolved",
                                             "never closed", "not closed", "already open"],
                                   forbidden={"tool": shape.reopen.name, "args": {reopen_key: target[t.pk]}},
                                   by="tool", rule="can be reopened")}
    step = ctx.chain.add(shape.reopen, {reopen_key: pick(listed, {shape.text: text}, t.pk)})
    goal = WriteGoal(step, ["reopen", "re-open", "open it again", "open again"], [Detail("words", text)],
                     [Detail("words", other)], f'reopen your {t.label} "{text}"', f'Your {t.label} "{text}" is reopened.')
    ask = (f"My {t.label} about \"{text}\" was marked resolved, but it isn't sorted out. Could you reopen it?"
           if opening_has_text else f"One of my {t.label}s was marked resolved, but it isn't sorted out. "
                                    "Could you reopen it?")
    return {"kind": "write", "goal": goal, "ask": ask, "restate": f'I want my {t.label} "{text}" reopened.',
            "motive": ("nothing has changed since I filed it", "nothing has changed since you filed it"),
            "what": f'reopen your {t.label} "{text}"',
            "swap": [[text, other]]}


def close_request(ctx: Context, shape: TicketShape) -> dict[str, Any]:
    """Close one of the customer's requests that they no longer need; their other requests, about
    other things, stay as they are."""
    cat, t = ctx.catalog, shape.table
    if shape.close is None:
        raise NotApplicable("no way to close a request")
    closable = list(shape.close.subject["transition"]["from"])
    target, near, listed = _customer_requests(ctx, shape, lambda: [ctx.rng.choice(closable)
                                                                   for _ in range(1 + ctx.near_misses)])
    status = target["status"]
    text, other = target[shape.text], near[shape.text]
    opening_has_text = ctx.rng.random() < 0.5
    _which_request(ctx, shape, text, opening_has_text)
    ctx.targets.append(Target(t.name, target[t.pk], {shape.text: text, shape.own.fk: target[shape.own.fk]}, [],
                              f"the customer's {t.label} \"{text}\""))
    step = ctx.chain.add(shape.close, {cat.key_param(shape.close, t.name): pick(listed, {shape.text: text}, t.pk)})
    goal = WriteGoal(step, ["close", "withdraw", "shut", "no longer need", "don't need"], [Detail("words", text)],
                     [Detail("words", other)], f'close your {t.label} "{text}"', f'Your {t.label} "{text}" is closed.')
    motive = (("it was sorted out and it's still fine", "it was sorted out and it is still fine") if status == "resolved"
              else ("the problem went away on its own", "the problem went away on its own"))
    ask = (f"I no longer need my {t.label} about \"{text}\". Could you close it?" if opening_has_text
           else f"I no longer need one of my {t.label}s. Could you close it?")
    return {"kind": "write", "goal": goal, "ask": ask, "restate": f'I want my {t.label} "{text}" closed.',
            "motive": motive, "what": f'close your {t.label} "{text}"', "swap": [[text, other]]}


def request_status(ctx: Context, shape: TicketShape) -> dict[str, Any]:
    """Ask where one of the customer's requests stands (the other requests are at other stages)."""
    cat, t = ctx.catalog, shape.table
    def statuses() -> list[str]:  # each request at another stage; the one asked about is not closed
        states = [s for s in t.states if s != "closed"]  # only the customer closes one: they would know
        ctx.rng.shuffle(states)
        return (states + [s for s in t.states if s == "closed"])[:1 + ctx.near_misses]

    target, near, listed = _customer_requests(ctx, shape, statuses)
    text, status = target[shape.text], target["status"]
    _which_request(ctx, shape, text, True)
    ctx.targets.append(Target(t.name, target[t.pk], {shape.text: text, shape.own.fk: target[shape.own.fk]}, [],
                              f"the customer's {t.label} \"{text}\""))
    answer = Answer("words", status, f'where your {t.label} "{text}" stands',
                    pick(listed, {shape.text: text}, "status"), f'Your {t.label} "{text}" is {{value}}.',
                    exclusive=[s for s in t.states if s != status])
    ask = f"What is happening with my {t.label} about \"{text}\"? I haven't heard back."
    return {"kind": "question", "answer": answer, "ask": ask, "restate": ask,
            "motive": ("it has been a while", "it has been a while since you filed it"),
            "what": f'know where your {t.label} "{text}" stands', "swap": [[text, near[shape.text]]]}


# ---------------------------------------------------------------------------------------------
# The library


@dataclass
class Intent:
    name: str
    kind: str
    build: Callable[[Context], dict[str, Any]]


def library(cat: Catalog) -> list[Intent]:
    """Every intent this domain supports (an intent per shape it has)."""
    if cat.person is None:
        return []
    intents: list[Intent] = []
    for shape in booking_shapes(cat):
        label = shape.booking.name
        if cat.writer("cancel_booking", label):
            intents.append(Intent(f"cancel_booking:{label}", "write", lambda c, s=shape: cancel_booking(c, s)))
            intents.append(Intent(f"cancel_ended_booking:{label}", "refusal",
                                  lambda c, s=shape: cancel_booking(c, s, "refusal_ended")))
            if shape.own.through is None:
                intents.append(Intent(f"cancel_friends_booking:{label}", "refusal",
                                      lambda c, s=shape: cancel_booking(c, s, "refusal_other")))
        if cat.writer("book", label) and shape.search and shape.capacity:
            intents.append(Intent(f"book:{label}", "write", lambda c, s=shape: book(c, s)))
            intents.append(Intent(f"book_full:{label}", "refusal", lambda c, s=shape: book(c, s, "refusal_full")))
            if cat.writer("cancel_booking", label):
                intents.append(Intent(f"reschedule:{label}", "write", lambda c, s=shape: reschedule(c, s)))
                intents.append(Intent(f"reschedule_full:{label}", "refusal",
                                      lambda c, s=shape: reschedule(c, s, "refusal_full")))
        if shape.search:
            intents.append(Intent(f"ask_booking_provider:{label}", "question", lambda c, s=shape: booking_question(c, s)))
    for shape in bill_shapes(cat):
        label = shape.invoice.name
        if shape.pay:
            intents.append(Intent(f"pay_bill:{label}", "write", lambda c, s=shape: pay_bill(c, s)))
            intents.append(Intent(f"pay_void_bill:{label}", "refusal", lambda c, s=shape: pay_bill(c, s, "refusal_void")))
        intents.append(Intent(f"ask_bill_balance:{label}", "question", lambda c, s=shape: bill_question(c, s)))
        intents.append(Intent(f"ask_total_owed:{label}", "question", lambda c, s=shape: bill_question(c, s, "total")))
    if cat.view.tools_for("update", cat.person.name):
        intents.append(Intent("update_profile", "write", lambda c: update_profile(c)))
        intents.append(Intent("update_friends_profile", "refusal", lambda c: update_profile(c, "refusal_other")))
    for shape in ticket_shapes(cat):
        label = shape.table.name
        if shape.reopen is not None:
            intents.append(Intent(f"reopen_request:{label}", "write", lambda c, s=shape: reopen_request(c, s)))
            intents.append(Intent(f"reopen_unresolved_request:{label}", "refusal",
                                  lambda c, s=shape: reopen_request(c, s, "refusal_unresolved")))
        if shape.close is not None:
            intents.append(Intent(f"close_request:{label}", "write", lambda c, s=shape: close_request(c, s)))
        intents.append(Intent(f"ask_request_status:{label}", "question", lambda c, s=shape: request_status(c, s)))
    for shape in create_shapes(cat):
        intents.append(Intent(f"file_record:{shape[0].name}", "write", lambda c, s=shape: create_record(c, s)))
    return intents
