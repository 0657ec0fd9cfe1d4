"""Tools explain themselves: descriptions, parameter schemas that say what the contract checks, the
subject metadata, and the tools every domain keeps for customer-service tasks."""

from __future__ import annotations

import functools
import re

import pytest

from environments.synthesis.procedural import generator, vocabulary
from environments.synthesis.spec import DomainSpec

CONTACT_KINDS = ("email", "phone", "city", "address")


@functools.lru_cache(maxsize=256)
def make(seed: int) -> DomainSpec:
    draft = generator.draft_domain(seed)
    tables = generator.design_schema(draft)
    tools, rules = generator.design_tools(draft, tables)
    return DomainSpec(name=draft["name"], slug=draft["slug"],
                      description=generator.describe_domain(draft, tables, tools, rules), keywords=[],
                      sector=draft["sector"], seed=seed, backend="procedural", tables=tables, tools=tools)


def seeds_per_sector(per_sector: int = 2) -> list[int]:
    """A sample of seeds that covers every sector ``per_sector`` times."""
    chosen: dict[str, list[int]] = {}
    seed = 1000
    while len(chosen) < len(vocabulary.SECTORS) or min(len(v) for v in chosen.values()) < per_sector:
        sector = generator.draft_domain(seed)["sector"]
        if len(chosen.setdefault(sector, [])) < per_sector:
            chosen[sector].append(seed)
        seed += 1
    return sorted(s for v in chosen.values() for s in v)


SAMPLE = seeds_per_sector()


def kind(col) -> str:  # type: ignore[no-untyped-def]
    return col.generator.split("(")[0]


def test_the_sample_covers_all_17_sectors():
    assert len(vocabulary.SECTORS) == 17
    assert {make(s).sector for s in SAMPLE} == {s.key for s in vocabulary.SECTORS}


# ---------------------------------------------------------------------------------------------
# Descriptions and parameters


@pytest.mark.parametrize("seed", SAMPLE)
def test_every_tool_has_a_real_description_and_every_parameter_is_described(seed):
    for tool in make(seed).tools:
        text = tool.description
        assert text.lower().rstrip(".") != tool.name.replace("_", " ")
        sentences = [s for s in re.split(r"(?<=[.])\s+", text) if s]
        assert 2 <= len(sentences) <= 4, (tool.name, text)
        assert len(text.split()) >= 10, (tool.name, text)
        for name, schema in tool.parameters["properties"].items():
            description = schema.get("description", "")
            assert description.endswith(".") and len(description.split()) >= 4, (tool.name, name, description)


@pytest.mark.parametrize("seed", SAMPLE)
def test_schemas_state_formats_enums_ranges_and_lengths_that_the_contract_checks(seed):
    d = make(seed)
    for tool in d.tools:
        checks = {s["param"]: s for s in tool.contract["steps"] if s["op"] == "validate"}
        required = set(tool.parameters["required"])
        for name, schema in tool.parameters["properties"].items():
            check = checks[name]  # every parameter is checked by the contract
            assert schema.get("enum") == check.get("enum"), (tool.name, name)
            assert schema.get("minimum") == check.get("min"), (tool.name, name)
            assert schema.get("maximum") == check.get("max"), (tool.name, name)
            assert schema.get("minLength") == check.get("min_length"), (tool.name, name)
            fmt = {"date": "date", "datetime": "date-time"}.get(check["type"])
            assert schema.get("format") == fmt, (tool.name, name)
            if name in required and schema["type"] == "string" and "enum" not in schema and fmt is None:
                assert schema.get("minLength") == 1, (tool.name, name)
        # Parameters that write a column carry the column's format.
        for table in d.tables:
            for col in table.columns:
                if col.name in tool.parameters["properties"] and tool.template in ("create", "update"):
                    schema = tool.parameters["properties"][col.name]
                    if col.type == "datetime":
                        assert schema["format"] == "date-time"
                        assert "ISO 8601 with a time zone, e.g. 2026-03-10T09:00:00Z" in schema["description"]
                    if col.type == "date":
                        assert schema["format"] == "date"


def test_date_time_parameters_are_checked_and_stored_as_utc_instants():
    found = 0
    for seed in SAMPLE:
        for tool in make(seed).tools:
            for name, schema in tool.parameters["properties"].items():
                if schema.get("format") == "date-time":
                    found += 1
                    checks = [s for s in tool.contract["steps"] if s["op"] == "validate" and s["param"] == name]
                    assert checks and checks[0]["type"] == "datetime"
                    assert f"{{'instant': {{'param': '{name}'}}}}" in str(tool.contract["steps"]), tool.name
    assert found >= 10


def test_descriptions_say_when_a_tool_refuses_and_what_it_changes():
    d = make(1001)
    cancel = next(t for t in d.tools if t.template == "cancel_booking")
    assert "refuses" in cancel.description and "completed or already cancelled" in cancel.description
    assert "gives the places back" in cancel.description
    book = next(t for t in d.tools if t.template == "book")
    assert "closed" in book.description and "left" in book.description
    pay = next(t for t in d.tools if t.template == "pay")
    assert "paid or void" in pay.description


# ---------------------------------------------------------------------------------------------
# Subject metadata


@pytest.mark.parametrize("seed", SAMPLE[:10])
def test_every_contract_carries_its_subject(seed):
    d = make(seed)
    tables = {t.name for t in d.tables}
    for tool in d.tools:
        subj = tool.contract["subject"]
        assert set(subj) >= {"template", "table", "parent", "filters", "sets", "keys"}
        assert subj["template"] == tool.template
        assert subj["table"] in tables
        assert subj["parent"] is None or subj["parent"] in tables
        assert all(t in tables for t in subj["keys"].values())
        assert set(subj["keys"]) <= set(tool.parameters["properties"])
        assert set(subj["filters"]) <= set(tool.parameters["properties"])
        for spec in subj["filters"].values():
            assert spec["cmp"] in ("eq", "contains", "ge", "le", "on_date")
            assert d.table(subj["table"]).has(spec["col"])
        if tool.template in ("list_for_parent", "aggregate", "status_rate"):
            assert subj["parent"] is not None
        if tool.template in ("create", "update", "book", "pay"):
            assert subj["sets"] and set(subj["sets"]) <= set(tool.parameters["properties"])


# ---------------------------------------------------------------------------------------------
# What a customer-service task needs, in every domain


@pytest.mark.parametrize("seed", SAMPLE)
def test_every_domain_keeps_the_tools_customer_service_needs(seed):
    d = make(seed)
    names = {t.name: t for t in d.tools}
    by_name = {t.name: t for t in d.tables}
    essential = generator.essential_tool_names(d.tables, d.tools)
    assert len(d.tools) <= 80

    def must(name: str):  # type: ignore[no-untyped-def]
        assert name in names and name in essential, (d.sector, name)
        return names[name]

    people = [t for t in d.tables if t.role == "person"]
    assert people
    for p in people:
        email = next(c for c in p.columns if kind(c) == "email")
        search = must(f"search_{p.name}")
        filters = search.contract["subject"]["filters"]
        assert filters[email.name] == {"col": email.name, "cmp": "eq"}
        assert any(spec["cmp"] == "contains" for spec in filters.values())
        must(f"get_{generator.snake(p.label)}")
        update = must(f"update_{generator.snake(p.label)}")
        contact = {c.name for c in p.columns if kind(c) in CONTACT_KINDS}
        assert set(update.contract["subject"]["sets"]) == contact and p.pk not in contact
        # b. lists from the customer to what they own, one hop further too
        person_names = {p.name}
        owned_direct = {t.name for t in d.tables if any(c.fk and c.fk["table"] in person_names for c in t.columns)}
        for t in d.tables:
            for c in t.columns:
                if c.fk and (c.fk["table"] in person_names or c.fk["table"] in owned_direct):
                    parent = by_name[c.fk["table"]]
                    must(f"list_{t.name}_for_{generator.snake(parent.label)}")
    owned = generator.owner_paths(d.tables)
    for t in d.tables:
        label = generator.snake(t.label)
        if t.role in ("resource", "provider", "place"):
            search = must(f"search_{t.name}")
            filters = search.contract["subject"]["filters"]
            for c in t.columns:
                if t.role == "resource" and c.type == "datetime" and kind(c) != "created":
                    assert {"col": c.name, "cmp": "on_date"} in filters.values(), (t.name, c.name)
                    on_date = next(p for p, s in filters.items() if s["cmp"] == "on_date")
                    assert search.parameters["properties"][on_date]["format"] == "date"
                if t.role == "resource" and c.type == "date":
                    assert filters.get(c.name) == {"col": c.name, "cmp": "eq"}
            if t.role in ("provider", "place") and any(kind(c) in ("person", "title", "company") for c in t.columns):
                assert any(s["cmp"] == "contains" for s in filters.values()), t.name
        if t.role in ("resource", "provider"):
            must(f"get_{label}")
        if t.role == "booking":
            resource = next(by_name[c.fk["table"]] for c in t.columns if c.fk and by_name[c.fk["table"]].role == "resource")
            must(f"book_{generator.snake(resource.label)}")
            must(f"cancel_{label}")
            for verb, _sources, _target in t.machine["transitions"]:
                must(f"{verb}_{label}")
            if f"search_{t.name}" in names:
                filters = names[f"search_{t.name}"].contract["subject"]["filters"]
                for c in t.columns:
                    if c.type == "date":
                        assert filters.get(c.name) == {"col": c.name, "cmp": "eq"}
        if t.role == "payment":
            invoice = next(by_name[c.fk["table"]] for c in t.columns if c.fk)
            must(f"pay_{generator.snake(invoice.label)}")
        if t.machine and t.machine["name"] == "ticket":
            for verb, _sources, _target in t.machine["transitions"]:
                must(f"{verb}_{label}")
        if t.role == "record" and t.name in owned and any(c.type == "text" for c in t.columns):
            must(f"create_{label}")


def test_the_tool_count_stays_within_bounds_over_many_seeds():
    counts = [len(make(seed).tools) for seed in range(1000, 1100)]
    assert min(counts) >= 25 and max(counts) <= 80


# ---------------------------------------------------------------------------------------------
# Natural semantics


def test_capacity_columns_are_named_after_what_is_booked():
    names = set()
    for sector in vocabulary.SECTORS:
        for t in sector.tables:
            if t.role == "resource":
                capacity = next(tok for tok in t.fields.split() if ":capacity(" in tok)
                names.add(capacity.split(":")[0])
    assert {"rooms_left", "lots_left", "stops_left", "places_left"} <= names
    assert len(names) >= 6


def test_apartments_and_securities_are_not_restocked():
    for seed in range(1000, 1300):
        d = make(seed)
        if d.sector not in ("real_estate", "finance"):
            continue
        for tool in d.tools:
            table = d.table(tool.contract["subject"]["table"])
            if tool.template in ("restock", "withdraw"):
                assert table.name not in ("units", "apartments", "instruments", "securities"), tool.name


def test_transition_messages_use_real_past_participles():
    for seed in SAMPLE:
        for tool in make(seed).tools:
            for step in tool.contract["steps"]:
                message = step.get("message", "")
                assert not re.search(r"\b\w+eed\b", message.replace("proceed", "")), message
                assert " a a" not in message and not re.search(r"\ba [aeio]", step.get("refuses", "")), step
