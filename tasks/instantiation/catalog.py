"""What a domain offers a customer: who the customer is, what they own, and which tools find and
change it (Django-free). Intents read the catalog; they never look tools up by name.

Ownership follows foreign keys: a table *belongs to* the person table when it has a foreign key to
it (bookings, bills, tickets, pets…), and *through* a table that belongs to the person when it has
a foreign key to that one (a pet's care bookings, an order's return requests).
"""

from __future__ import annotations

import copy
import datetime as dt
import random
import re
from dataclasses import dataclass
from typing import Any

from environments.runtime import statekit

from .view import DomainView, TableView, ToolView

NAME_COLUMNS = ("full_name", "owner_name", "company_name", "shop_name", "name", "title", "label")
OPEN_BOOKING = ("pending", "confirmed")
OPEN_INVOICE = ("issued", "partially_paid")


@dataclass
class Ownership:
    """How rows of ``table`` reach the customer: directly, or through one owned table."""

    table: str
    fk: str  # column of ``table`` pointing at the person or at ``through``
    through: str | None = None  # the owned table in between (e.g. pets)
    through_fk: str | None = None  # its column pointing at the person


# How a customer names a booking whose table label is a clerk's word ("my session signup").
SPOKEN_LABELS = {"session signup": "session booking", "attendance": "booking", "workshop seat": "workshop booking",
                 "room seat": "room booking", "install booking": "installation booking",
                 "ipo subscription": "IPO subscription"}


class Catalog:
    def __init__(self, view: DomainView) -> None:
        self.view = view
        self.tables = {name: view.table(name) for name in view.tables}
        for table in self.tables.values():
            if table.role == "booking":
                table.label = SPOKEN_LABELS.get(table.label, table.label)
        persons = [t for t in self.tables.values() if t.role == "person"]
        self.person: TableView | None = persons[0] if persons else None
        self.clock = statekit_instant(view.clock)
        self.today = self.clock.date()

    # -- columns ----------------------------------------------------------------------------

    def email_column(self, table: TableView) -> str | None:
        return next((c for c in table.columns if "email" in c), None)

    def name_column(self, table: TableView) -> str | None:
        for name in NAME_COLUMNS:
            if name in table.columns and table.columns[name].get("type") in ("string", "text"):
                return name
        return None

    def when_column(self, table: TableView) -> str | None:
        """The column that says when a row happens (a date-time or a date that is not a stamp)."""
        for c, spec in table.columns.items():
            if spec.get("type") == "datetime" and spec.get("policy") != "exempt" and not _is_stamp(c):
                return c
        for c, spec in table.columns.items():
            if spec.get("type") == "date" and c not in ("date_of_birth", "birth_date", "dob"):
                return c
        return None

    def money_column(self, table: TableView, prefix: str = "amount") -> str | None:
        return next((c for c, s in table.columns.items() if c.startswith(prefix) and s.get("type") == "number"), None)

    def capacity_column(self, table: TableView) -> str | None:
        for tool in self.view.tools.values():
            if tool.template == "book" and table.name in tool.writes:
                for step in tool.contract["steps"]:
                    if step["op"] == "update" and step.get("table") == table.name:
                        return next(iter(step["set"]))
        return None

    # -- ownership --------------------------------------------------------------------------

    def ownership(self, table: str) -> Ownership | None:
        if self.person is None:
            return None
        t = self.tables[table]
        for fk, target in t.fks().items():
            if target == self.person.name:
                return Ownership(table, fk)
        for fk, target in t.fks().items():
            middle = self.tables.get(target)
            if middle is None or middle.role == "person":
                continue
            for mfk, mtarget in middle.fks().items():
                if mtarget == self.person.name:
                    return Ownership(table, fk, target, mfk)
        return None

    # -- tools ------------------------------------------------------------------------------

    def search(self, table: str, cmp: str | None = None, column: str | None = None) -> tuple[ToolView, str] | None:
        """The search tool of ``table`` and its parameter filtering ``column`` with ``cmp``."""
        for tool in self.view.tools_for("search", table):
            for param, spec in (tool.subject.get("filters") or {}).items():
                if (cmp is None or spec.get("cmp") == cmp) and (column is None or spec.get("col") == column):
                    return tool, param
        return None

    def lister(self, table: str, parent: str) -> tuple[ToolView, str] | None:
        """The tool listing the rows of ``table`` of one ``parent`` row, and its key parameter."""
        for tool in self.view.tools_for("list_for_parent", table, parent):
            return tool, self.key_param(tool, parent)
        return None

    def getter(self, table: str) -> tuple[ToolView, str] | None:
        for tool in self.view.tools_for("get", table):
            return tool, self.key_param(tool, table)
        return None

    def writer(self, template: str, table: str) -> ToolView | None:
        """A tool of ``template`` that writes ``table`` (book tools write the booking and the resource)."""
        found = [t for t in self.view.tools.values() if t.template == template and table in t.writes]
        return sorted(found, key=lambda t: t.name)[0] if found else None

    def key_param(self, tool: ToolView, table: str) -> str:
        """The parameter of ``tool`` that is the primary key of a row of ``table``."""
        keys = tool.subject.get("keys") or {}
        for param, target in keys.items():
            if target == table:
                return param
        for step in tool.contract["steps"]:
            if step["op"] == "load" and step["table"] == table and "param" in step.get("key", {}):
                return step["key"]["param"]
        raise KeyError(f"{tool.name} has no key parameter for {table}")


def _is_stamp(column: str) -> bool:
    return column in ("created_at", "updated_at", "paid_at", "posted_at", "submitted_at", "applied_at", "filed_at",
                      "opened_at", "reported_at", "raised_at", "sent_at", "added_at")


def statekit_instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Rows:
    """Builds rows for s0 by copying a real row of the same table (so every column has a value its
    schema accepts) and overriding what the task needs; every row it adds is recorded."""

    def __init__(self, catalog: Catalog, state: dict[str, Any], rng: random.Random) -> None:
        self.catalog = catalog
        self.state = state
        self.rng = rng
        self.added: list[dict[str, str]] = []

    def new_pk(self, table: str) -> str:
        existing = self.state.get(table) or {}
        prefix = next((str(pk).split("_")[0] for pk in existing), table[:3])
        while True:
            pk = f"{prefix}_{self.rng.getrandbits(24):06x}"
            if pk not in existing:
                return pk

    def add(self, table: str, why: str, **values: Any) -> dict[str, Any]:
        t = self.catalog.tables[table]
        templates = list((self.state.get(table) or {}).values()) or list((self.catalog.view.fixture.get(table) or {}).values())
        if not templates:
            raise LookupError(f"no row of {table} to model a new one on")
        row = copy.deepcopy(self.rng.choice(sorted(templates, key=lambda r: str(r.get(t.pk)))))
        row[t.pk] = self.new_pk(table)
        row.update(values)
        self.state.setdefault(table, {})[row[t.pk]] = row
        self.added.append({"table": table, "pk": row[t.pk], "why": why})
        return row

    def unique_email(self, table: TableView, column: str, first: str, last: str) -> str:
        taken = {str(r.get(column)).lower() for r in (self.state.get(table.name) or {}).values()}
        while True:
            email = f"{first.lower()}.{last.lower()}{self.rng.randint(2, 98)}@example.com"
            if email not in taken:
                return email

    def another_email(self, table: TableView, column: str, current: str) -> str:
        """A second address of the person who holds ``current``: their own name at another provider
        (a customer who changes e-mail keeps their name in it), unused in ``table``."""
        taken = {str(r.get(column)).lower() for r in (self.state.get(table.name) or {}).values()}
        local = re.sub(r"\d+$", "", current.split("@")[0].lower()) or "mail"
        providers = ["example.org", "example.net", "mail.example.com", "post.example.org"]
        self.rng.shuffle(providers)
        candidates = [f"{local}@{p}" for p in providers] + [f"{local}{n}@{p}" for n in range(2, 99) for p in providers]
        return next(email for email in candidates if email not in taken and email != current.lower())

    def validate(self) -> list[str]:
        return statekit.validate_rows(self.catalog.view.schema, self.state)
