"""Procedural phase-1 stages: domain draft, database schema, tool specifications with contracts.

Deterministic: everything is drawn from ``random.Random(seed)``, so the same seed gives the same
domain. Variety comes from the sector, the subset of entity archetypes, name alternatives,
optional columns, business-rule variants (exact or partial payments, booking limits, account
checks) and the subset of tool templates kept.

Every tool carries, besides its contract, a description written from that contract (what it
does, what it needs, when it refuses, what it changes) and a machine-readable ``subject`` in
``contract["subject"]`` (see :func:`subject`), which :func:`contract.evaluate` and the code
writer ignore.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from ..contract import contract_tables
from ..spec import JSON_TYPES, ColumnSpec, TableSpec, ToolSpec
from ..values import GENERATOR_RE, ValueMaker
from . import vocabulary as V
from . import wording as W
from .codegen import describe_contract

MAX_TOOLS = 80
CONTACT_KINDS = ("email", "phone", "city", "address")  # generators of the columns a customer may change


def snake(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _kind(col: ColumnSpec) -> str:
    """The generator kind of a column: ``capacity(1,4)`` -> ``capacity``."""
    return col.generator.split("(")[0]


# ---------------------------------------------------------------------------------------------
# Stage 1: domain draft


def draft_domain(seed: int) -> dict[str, Any]:
    rng = random.Random(f"domain:{seed}")
    sector = rng.choice(V.SECTORS)
    # Place and adjective follow the seed, so consecutive seeds never share a name.
    k = seed % (len(V.DOMAIN_PLACES) * len(V.DOMAIN_ADJ))
    place = V.DOMAIN_PLACES[k % len(V.DOMAIN_PLACES)]
    adjective = V.DOMAIN_ADJ[k // len(V.DOMAIN_PLACES)]
    noun = rng.choice(sector.nouns)
    name = " ".join(part for part in (adjective, place, noun) if part)
    slug = f"{snake(name).replace('_', '-')}-{seed:x}"
    # The final description is composed once the schema and tools are known (describe_domain).
    return {"name": name, "slug": slug, "sector": sector.key, "seed": seed, "place": place, "noun": noun,
            "description": f"{name}: {sector.description}.", "keywords": list(sector.keywords)}


def _sector(key: str) -> V.Sector:
    for s in V.SECTORS:
        if s.key == key:
            return s
    raise KeyError(key)


# ---------------------------------------------------------------------------------------------
# Stage 2: schema


def _column_from_dsl(token: str, rng: random.Random) -> ColumnSpec | None:
    name, _, gen = token.partition(":")
    optional = name.endswith("?")
    name = name.rstrip("?")
    if optional and rng.random() < 0.4:
        return None
    m = GENERATOR_RE.match(gen)
    if not m:
        raise ValueError(f"bad generator {gen!r}")
    kind, args = m.group("kind"), m.group("args")
    values = None
    if kind in ("person", "email", "phone", "city", "address", "company", "title", "code"):
        ctype = "string"
    elif kind == "text":
        ctype = "text"
    elif kind == "enum":
        ctype = "enum"
        values = (args or "").split(",")
    elif kind in ("int", "capacity", "stock", "rating"):
        ctype = "integer"
    elif kind in ("money", "number", "amount"):
        ctype = "number"
    elif kind in ("dob", "past_date", "future_date"):
        ctype = "date"
    elif kind in ("past_dt", "future_dt", "created"):
        ctype = "datetime"
    elif kind == "bool":
        ctype = "boolean"
    else:
        raise ValueError(f"unknown generator kind {kind!r}")
    # Reward policies (decisions.md): only what the agent cannot choose is exempt; a stamp set with
    # the frozen clock is exempt, free text is compared by meaning, everything else exactly.
    policy = "semantic" if ctype == "text" else "exempt" if kind == "created" else "exact"
    return ColumnSpec(name=name, type=ctype, nullable=optional, values=values, generator=gen, policy=policy)


def design_schema(draft: dict[str, Any]) -> list[TableSpec]:
    rng = random.Random(f"schema:{draft['seed']}")
    sector = _sector(draft["sector"])
    by_key = {snake(t.label.split("|")[0]): t for t in sector.tables}
    chosen = {k for k, t in by_key.items() if t.core}
    for k, t in by_key.items():
        if not t.core and rng.random() < 0.65:
            chosen.add(k)
    # Parent closure: a table never points at a table the domain lacks.
    changed = True
    while changed:
        changed = False
        for k in list(chosen):
            for parent in by_key[k].parents.split():
                if parent not in chosen:
                    chosen.add(parent)
                    changed = True
    # Parents first, so fixtures and foreign keys can always be filled in order.
    order: list[str] = []
    remaining = [k for k in by_key if k in chosen]
    while remaining:
        ready = [k for k in remaining if all(p in order for p in by_key[k].parents.split())]
        if not ready:
            raise ValueError(f"cyclic parents among {remaining}")
        order.extend(ready)
        remaining = [k for k in remaining if k not in ready]
    names: dict[str, tuple[str, str]] = {}
    for k in order:
        t = by_key[k]
        alts = t.table.split("|")
        labels = t.label.split("|")
        i = rng.randrange(len(alts))
        names[k] = (alts[i], labels[min(i, len(labels) - 1)])
    tables: list[TableSpec] = []
    for k in order:
        t = by_key[k]
        table_name, label = names[k]
        shown = W.words(label)
        pk = f"{snake(label)}_id"
        columns = [ColumnSpec(pk, "string", policy="exempt", generator="pk", description=f"the id of the {shown}")]
        for parent in t.parents.split():
            ptable, plabel = names[parent]
            columns.append(ColumnSpec(f"{snake(plabel)}_id", "string", fk={"table": ptable, "column": f"{snake(plabel)}_id"},
                                      policy="exact", generator="fk",
                                      description=f"the {W.words(plabel)} this {shown} belongs to"))
        for token in t.fields.split():
            col = _column_from_dsl(token, rng)
            if col is not None and not any(c.name == col.name for c in columns):
                col.description = W.column_phrase(col, shown)
                columns.append(col)
        machine = None
        if t.machine:
            template = V.MACHINES[t.machine]
            machine = {"name": t.machine, "initial": template["initial"], "states": list(template["states"]),
                       "transitions": [[verb, list(sources), target] for verb, sources, target in template["transitions"]]}
            if "cancel" in template:
                verb, sources, target = template["cancel"]
                machine["cancel"] = [verb, list(sources), target]
            columns.append(ColumnSpec("status", "enum", values=list(machine["states"]), default=machine["initial"],
                                      policy="exact", generator="status",
                                      description=f"the status of the {shown}: {W.join(machine['states'], 'or')}"))
        tables.append(TableSpec(name=table_name, label=label, pk=pk, columns=columns, role=t.role, prefix=t.prefix,
                                machine=machine, description=f"the {W.words(table_name)} of the domain"))
    return tables


# ---------------------------------------------------------------------------------------------
# Stage 3: tools


def _json_type(col: ColumnSpec) -> str:
    return JSON_TYPES[col.type]


def _row_schema(table: TableSpec) -> dict[str, Any]:
    return {"type": "object", "properties": {c.name: {"type": _json_type(c)} for c in table.columns}}


def _row_fields(table: TableSpec, prefix: str = "") -> list[dict[str, str]]:
    return [{"name": c.name, "type": _json_type(c), "path": f"{prefix}{c.name}"} for c in table.columns]


def _list_schema(table: TableSpec) -> dict[str, Any]:
    return {"type": "object", "properties": {"items": {"type": "array", "items": _row_schema(table)},
                                             "count": {"type": "integer"}}}


def _list_fields(table: TableSpec) -> list[dict[str, str]]:
    return _row_fields(table, "items.0.") + [{"name": "count", "type": "integer", "path": "count"}]


@dataclass
class Param:
    """One tool parameter: its JSON Schema, the contract check that enforces the same rules, and
    what it is in words (for the "It needs ..." sentence of the description)."""

    schema: dict[str, Any]
    check: dict[str, Any]
    need: str  # "the patient's id", "the start time"
    noun: str = ""  # "start time" (for "a start time that is not ...")
    required: bool = True
    default: Any = None


def param(name: str, ptype: str, description: str, need: str, *, required: bool = True, default: Any = None,
          enum: list[str] | None = None, minimum: float | None = None, maximum: float | None = None,
          min_length: int | None = None, noun: str = "") -> Param:
    """A parameter whose schema (types, formats, enums, ranges) and contract check say the same thing."""
    schema: dict[str, Any] = {"type": "string" if ptype in ("date", "datetime") else ptype}
    check: dict[str, Any] = {"op": "validate", "param": name, "type": ptype, "optional": not required}
    if ptype == "date":
        schema["format"] = "date"
    elif ptype == "datetime":
        schema["format"] = "date-time"
    if enum:
        schema["enum"] = check["enum"] = list(enum)
    if minimum is not None:
        schema["minimum"] = check["min"] = minimum
    if maximum is not None:
        schema["maximum"] = check["max"] = maximum
    if min_length:
        schema["minLength"] = check["min_length"] = min_length
    schema["description"] = W.sentence(description)
    return Param(schema=schema, check=check, need=need, noun=noun or need.removeprefix("the "), required=required,
                 default=default)


def _ptype(col: ColumnSpec) -> str:
    return {"string": "string", "text": "string", "enum": "string", "date": "date", "datetime": "datetime",
            "integer": "integer", "number": "number", "boolean": "boolean"}[col.type]


def _format_hint(ptype: str) -> str:
    if ptype == "date":
        return f"; {W.DATE_FORMAT_WORDS}"
    if ptype == "datetime":
        return f"; {W.DATE_TIME_FORMAT_WORDS}"
    return ""


def _range(col: ColumnSpec) -> dict[str, Any]:
    """The value rules a write enforces on a column (a rating is 1 to 5; amounts and counts are never negative)."""
    if col.type == "enum":
        return {"enum": list(col.values or [])}
    if col.type in ("integer", "number"):
        if _kind(col) == "rating":
            return {"minimum": 1, "maximum": 5}
        return {"minimum": 0}
    return {}


def id_param(table: TableSpec, name: str | None = None) -> Param:
    label = W.label(table)
    text = f"Id of the {label} (ids of {W.plural(table)} start with {table.prefix}_)"
    return param(name or table.pk, "string", text, f"the {label}'s id", min_length=1, noun=f"{label} id")


def set_param(col: ColumnSpec, required: bool | None = None) -> Param:
    """A parameter that writes a column of a new row."""
    required = (not col.nullable) if required is None else required
    ptype = _ptype(col)
    text = col.description + _format_hint(ptype) + ("" if required else "; optional")
    return param(col.name, ptype, text, f"the {W.short_phrase(col)}", required=required,
                 min_length=1 if ptype == "string" and col.type != "enum" and not col.nullable else None, **_range(col))


def update_param(col: ColumnSpec) -> Param:
    """An optional parameter that changes a column of an existing row."""
    ptype = _ptype(col)
    text = f"New value for {col.description}{_format_hint(ptype)}; leave it out to keep the current value"
    return param(col.name, ptype, text, f"the {W.short_phrase(col)}", required=False,
                 min_length=1 if ptype == "string" and col.type != "enum" and not col.nullable else None, **_range(col))


def value_of(col: ColumnSpec, name: str | None = None) -> dict[str, Any]:
    """How a parameter becomes a stored value: date-times are stored as UTC instants."""
    expr: dict[str, Any] = {"param": name or col.name}
    return {"instant": expr} if col.type == "datetime" else expr


def _load(alias: str, table: TableSpec, param_name: str) -> dict[str, Any]:
    return {"op": "load", "as": alias, "table": table.name, "key": {"param": param_name}, "what": table.label}


def _require(cond: dict[str, Any], message: str, refuses: str) -> dict[str, Any]:
    """A business rule: ``message`` is the error a caller gets, ``refuses`` how the description says it."""
    return {"op": "require", "cond": cond, "error": "ValueError", "message": message, "refuses": refuses}


def _unique_email(t: TableSpec, pk_param: str | None) -> dict[str, Any] | None:
    """An e-mail address identifies one customer: no two rows of a person table share it."""
    email = next((c for c in t.columns if _kind(c) == "email"), None) if t.role == "person" else None
    if email is None:
        return None
    cond: dict[str, Any] = {"table": t.name, "col": email.name, "value": {"param": email.name}, "unique": True}
    if pk_param is not None:  # an update may keep its own address
        cond["except"] = {"col": t.pk, "value": {"param": pk_param}}
    return _require({"no_rows": cond}, f"another {W.label(t)} already uses this {W.short_phrase(email)}",
                    f"{W.article(W.short_phrase(email))} that another {W.label(t)} already uses")


def _refuse_states(table: TableSpec, bad: list[str]) -> str:
    shown = [("already cancelled" if s == "cancelled" else W.status_words(s)) for s in bad]
    return f"{W.article(W.label(table))} that is {W.join(shown, 'or')}"


def subject(template: str, table: TableSpec, *, parent: TableSpec | None = None,
            filters: dict[str, dict[str, str]] | None = None, sets: list[str] | None = None,
            keys: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    """What a tool is about, for task builders (``contract["subject"]``; the oracle and codegen ignore it).

    ``{"template": "search" | "get" | "list_for_parent" | "create" | "update" | "transition" | "delete"
    | "book" | "cancel_booking" | "pay" | "restock" | "withdraw" | "aggregate" | "count_by_status"
    | "status_rate",
    "table": the main table (the table searched, read, created or changed; for book and pay the
    table a row is added to, i.e. the booking or payment table),
    "parent": the parent table of list_for_parent, aggregate and status_rate tools, else None,
    "filters": {param: {"col": column, "cmp": "eq" | "contains" | "ge" | "le" | "on_date"}} (search),
    "sets": [columns the tool writes from parameters] (create, update, book, pay, restock, withdraw),
    "keys": {param: the table whose primary key the parameter is} (a search's foreign-key filters too)}``,
    plus ``"transition": {"from": [...], "to": status}`` for transition and cancel_booking tools and
    ``"measure": {"fn": ..., "col": ...}`` for aggregate tools. Every key is always present.
    """
    out: dict[str, Any] = {"template": template, "table": table.name, "parent": parent.name if parent else None,
                           "filters": filters or {}, "sets": sets or [], "keys": keys or {}}
    out.update(extra)
    return out


def _walk(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for step in steps:
        out.append(step)
        if step["op"] == "if":
            out.extend(_walk(step["then"]))
    return out


def _refusals(params: dict[str, Param], body: list[dict[str, Any]]) -> list[str]:
    """When a tool refuses, in words, from its declarations (loads, requires, format checks)."""
    items: list[str] = []
    unknown = []
    for step in _walk(body):
        if step["op"] == "load" and "param" in step["key"] and W.words(step["what"]) not in unknown:
            unknown.append(W.words(step["what"]))
    if unknown:
        items.append(f"an id that matches no {W.join(unknown, 'or')}")
    for step in _walk(body):
        if step["op"] == "require" and step.get("refuses"):
            items.append(step["refuses"])
    for p in params.values():
        if p.check["type"] == "datetime":
            items.append(f"{W.article(p.noun)} that is not a date-time with a time zone (such as {W.DATE_TIME_EXAMPLE})")
        elif p.check["type"] == "date" and p.required:
            items.append(f"{W.article(p.noun)} that is not a date written YYYY-MM-DD")
    return items


def _needs(params: dict[str, Param]) -> str:
    required = [p.need for p in params.values() if p.required]
    optional = [p.need for p in params.values() if not p.required]
    parts = []
    if required:
        parts.append(f"It needs {W.join(required)}")
    if optional:
        parts.append(("and may also be given " if required else "It may be given ") + W.join(optional))
    return W.sentence(" ".join(parts)) if parts else "It takes no input."


class _ToolFactory:
    def __init__(self, tables: list[TableSpec], rng: random.Random) -> None:
        self.tables = tables
        self.by_name = {t.name: t for t in tables}
        self.rng = rng
        self.rules = {
            "exact_payment": rng.random() < 0.4,
            "max_per_booking": rng.choice([2, 3, 4, 6]),
            "check_account_active": rng.random() < 0.7,
        }

    def parents(self, table: TableSpec) -> list[tuple[ColumnSpec, TableSpec]]:
        return [(c, self.by_name[c.fk["table"]]) for c in table.columns if c.fk]

    def children(self, table: TableSpec) -> list[tuple[TableSpec, ColumnSpec]]:
        return [(t, c) for t in self.tables for c in t.columns if c.fk and c.fk["table"] == table.name]

    def tool(self, name: str, kind: str, template: str, params: dict[str, Param], body: list[dict[str, Any]],
             returns: Any, returns_schema: dict[str, Any], output_fields: list[dict[str, str]], *,
             what: str, subject: dict[str, Any], needs: str | None = None, effect: str = "",
             refuses: list[str] | None = None) -> ToolSpec:
        """Build a tool: parameters are checked first (in order), then the body runs. The description
        is written from the same declarations: what it does, what it needs, when it refuses, its effect."""
        contract = {
            "params": {p: {"type": spec.schema.get("type"), "default": spec.default} for p, spec in params.items()},
            "required": [p for p, spec in params.items() if spec.required],
            "steps": [spec.check for spec in params.values()] + body,
            "returns": returns,
            "subject": subject,
        }
        parameters = {"type": "object",
                      "properties": {p: spec.schema for p, spec in params.items()},
                      "required": contract["required"], "additionalProperties": False}
        refusal_items = _refusals(params, body) if refuses is None else refuses
        sentences = [W.sentence(what), needs if needs is not None else _needs(params)]
        if refusal_items:
            sentences.append(W.sentence("It refuses " + W.join(refusal_items, "or")))
        if effect:
            sentences.append(W.sentence(effect))
        reads, writes = contract_tables(contract)
        pre, post = describe_contract(contract)
        return ToolSpec(name=name, description=" ".join(s for s in sentences if s), kind=kind, parameters=parameters,
                        returns=returns_schema, output_fields=output_fields, preconditions=pre, postconditions=post,
                        raises=_declared_raises(contract["steps"]), reads=sorted(reads), writes=sorted(writes),
                        contract=contract, template=template)

    # -- reads ------------------------------------------------------------------------------

    def get(self, t: TableSpec) -> ToolSpec:
        shown = [W.short_phrase(c) for c in t.columns if c.generator not in ("pk",)][:7]
        return self.tool(
            f"get_{snake(t.label)}", "read", "get", {t.pk: id_param(t)}, [_load("row", t, t.pk)],
            {"var": "row"}, _row_schema(t), _row_fields(t),
            what=f"Looks up one {W.label(t)} by its id and returns all of its details ({W.join(shown)})",
            subject=subject("get", t, keys={t.pk: t.name}))

    def search_filters(self, t: TableSpec) -> list[tuple[str, ColumnSpec, str]]:
        """(parameter, column, comparison) of a table's search tool, most useful first."""
        filters: list[tuple[str, ColumnSpec, str]] = []
        if t.role == "person":  # a customer is identified by the e-mail address they give
            email = next((c for c in t.columns if _kind(c) == "email"), None)
            if email is not None:
                filters.append((email.name, email, "eq"))
        text_cols = [c for c in t.columns if c.type == "string" and _kind(c) in ("person", "title", "company", "city")] \
            or [c for c in t.columns if c.type == "string" and _kind(c) == "code"]  # an apartment is known by its code
        if text_cols:
            filters.append((f"{text_cols[0].name}_contains", text_cols[0], "contains"))
        if t.role in ("resource", "booking"):
            for c in t.columns:
                if c.type == "datetime" and _kind(c) != "created" and t.role == "resource":
                    stem = c.name.removesuffix("_at")
                    filters.append((f"{stem}_on", c, "on_date"))
                elif c.type == "date":
                    filters.append((c.name, c, "eq"))
        for c in t.columns:
            if c.type == "enum" and sum(1 for _p, col, _c in filters if col.type == "enum") < 2:
                filters.append((c.name, c, "eq"))
        num_cols = [c for c in t.columns if c.type in ("number", "integer") and not c.nullable]
        if num_cols:
            c = num_cols[0]
            filters.append((f"min_{c.name}", c, "ge"))
            filters.append((f"max_{c.name}", c, "le"))
        for c in t.columns:
            if c.fk and len(filters) < 8:
                filters.append((c.name, c, "eq"))
        return filters

    def search(self, t: TableSpec) -> ToolSpec | None:
        filters = self.search_filters(t)
        if not filters:
            return None
        rows = W.plural(t)
        params: dict[str, Param] = {}
        where = []
        said: list[str] = []
        for pname, col, cmp in filters:
            if cmp == "contains":
                p = param(pname, "string", f"Only {rows} whose {W.short_phrase(col)} contains this text "
                                          f"(case does not matter)", "", required=False)
                said.append(f"part of the {W.short_phrase(col)}")
            elif cmp == "on_date":
                p = param(pname, "date", f"Only {rows} whose {W.short_phrase(col)} falls on this day (UTC); "
                                         f"{W.DATE_FORMAT_WORDS}", "", required=False)
                said.append(f"the day of the {W.short_phrase(col)}")
            elif cmp in ("ge", "le"):
                bound = "at least" if cmp == "ge" else "at most"
                p = param(pname, _ptype(col), f"Only {rows} whose {W.short_phrase(col)} is {bound} this value", "",
                          required=False)
                if cmp == "ge":
                    said.append(f"a range of {W.short_phrase(col)}")
            elif col.fk:
                parent = self.by_name[col.fk["table"]]
                p = param(pname, "string", f"Only {rows} of this {W.label(parent)} (its id, starting with "
                                           f"{parent.prefix}_)", "", required=False)
                said.append(f"the {W.label(parent)}")
            else:
                ptype = _ptype(col)
                p = param(pname, ptype, f"Only {rows} whose {W.short_phrase(col)} is exactly this"
                                        f"{_format_hint(ptype)}", "", required=False,
                          enum=list(col.values) if col.type == "enum" else None)
                said.append(f"the exact {W.short_phrase(col)}" if col.type != "enum" else W.short_phrase(col))
            params[pname] = p
            where.append({"col": col.name, "cmp": cmp, "value": {"param": pname}, "skip_if_none": True})
        params["limit"] = param("limit", "integer", "Maximum number of rows to return, from 1 to 100 (20 when left out)",
                                "", required=False, default=20, minimum=1, maximum=100)
        body = [{"op": "query", "as": "items", "table": t.name, "where": where, "order_by": t.pk, "pk": t.pk,
                 "limit": {"param": "limit"}}]
        needs = W.sentence(f"Every filter is optional and they combine: {W.join(said)}; at most limit rows come back "
                           f"(20 by default)")
        if t.role == "person" and any(cmp == "eq" and _kind(col) == "email" for _p, col, cmp in filters):
            needs += " " + W.sentence("Use the e-mail filter to identify a customer from the address they give")
        return self.tool(
            f"search_{snake(t.name)}", "read", "search", params, body, {"items": "items"}, _list_schema(t), _list_fields(t),
            what=f"Finds the {rows} that match the filters given and returns them, ordered by id, with their count",
            needs=needs, refuses=["a day that is not a date written YYYY-MM-DD"] if any(c == "on_date" for *_x, c in filters) else [],
            subject=subject("search", t, filters={p: {"col": col.name, "cmp": cmp} for p, col, cmp in filters},
                            keys={p: col.fk["table"] for p, col, cmp in filters if col.fk}))

    def list_for_parent(self, t: TableSpec, fk: ColumnSpec, parent: TableSpec) -> ToolSpec:
        body = [_load("parent", parent, fk.name),
                {"op": "query", "as": "items", "table": t.name, "order_by": t.pk, "pk": t.pk,
                 "where": [{"col": fk.name, "cmp": "eq", "value": {"param": fk.name}, "skip_if_none": False}]}]
        return self.tool(
            f"list_{snake(t.name)}_for_{snake(parent.label)}", "read", "list_for_parent",
            {fk.name: id_param(parent, fk.name)}, body, {"items": "items"}, _list_schema(t), _list_fields(t),
            what=f"Lists all the {W.plural(t)} of one {W.label(parent)}, ordered by id, with their count",
            subject=subject("list_for_parent", t, parent=parent, keys={fk.name: parent.name}))

    # -- writes -----------------------------------------------------------------------------

    def _settable(self, t: TableSpec) -> list[ColumnSpec]:
        return [c for c in t.columns if c.generator not in ("pk", "fk", "status", "created")]

    def _active_check(self, alias: str, parent: TableSpec) -> dict[str, Any] | None:
        """The account rule: new rows may only hang off an active parent (when the domain has the rule)."""
        if not (self.rules["check_account_active"] and parent.machine and "active" in parent.machine["states"]):
            return None
        others = [s for s in parent.machine["states"] if s != "active"]
        return _require({"eq": [{"var": f"{alias}.status"}, {"const": "active"}]},
                        f"the {W.label(parent)} must be active",
                        _refuse_states(parent, others))

    def create(self, t: TableSpec) -> ToolSpec:
        params: dict[str, Param] = {}
        body: list[dict[str, Any]] = []
        values: dict[str, Any] = {t.pk: {"new_id": t.prefix}}
        checks = []
        keys = {}
        for fk, parent in self.parents(t):
            params[fk.name] = id_param(parent, fk.name)
            alias = f"parent_{snake(parent.label)}"
            body.append(_load(alias, parent, fk.name))
            rule = self._active_check(alias, parent)
            if rule:
                checks.append(rule)
            values[fk.name] = {"param": fk.name}
            keys[fk.name] = parent.name
        for c in self._settable(t):
            params[c.name] = set_param(c)
            values[c.name] = value_of(c)
        body.extend(checks)
        unique = _unique_email(t, None)
        if unique:
            body.append(unique)
        if t.has("status"):
            values["status"] = {"const": t.machine["initial"]}
        stamped = [c for c in t.columns if c.generator == "created"]
        for c in stamped:
            values[c.name] = {"now": True}
        body.append({"op": "insert", "as": "new", "table": t.name, "pk": t.pk, "values": values})
        parents = [W.article(W.label(p)) for _fk, p in self.parents(t)]
        verb = "Opens" if t.machine and t.machine.get("name") == "ticket" else "Creates"
        what = f"{verb} a new {W.label(t)}" + (f" for {W.join(parents)}" if parents else "")
        effect = []
        if t.has("status"):
            effect.append(f"the new {W.label(t)} starts as {W.status_words(t.machine['initial'])}")
        if stamped:
            effect.append(f"its {W.short_phrase(stamped[0])} is set to the current time")
        return self.tool(f"create_{snake(t.label)}", "write", "create", params, body,
                         {"var": "new"}, _row_schema(t), _row_fields(t), what=what, effect=W.join(effect),
                         subject=subject("create", t, sets=[p for p in params], keys=keys))

    def update_columns(self, t: TableSpec) -> list[ColumnSpec]:
        """Columns an update may change: a person's contact details; otherwise the first few plain ones."""
        if t.role == "person":
            return [c for c in t.columns if _kind(c) in CONTACT_KINDS]
        return [c for c in self._settable(t) if _kind(c) not in ("capacity", "stock", "amount", "dob")][:3]

    def update(self, t: TableSpec) -> ToolSpec | None:
        cols = self.update_columns(t)
        if not cols or t.role == "payment":  # a payment is a record of money received: it is never edited
            return None
        params: dict[str, Param] = {t.pk: id_param(t)}
        for c in cols:
            params[c.name] = update_param(c)
        body: list[dict[str, Any]] = [
            _require({"any_set": [c.name for c in cols]}, "give at least one field to update", "a call that changes nothing"),
            _load("row", t, t.pk)]
        unique = _unique_email(t, t.pk)
        if unique and any(_kind(c) == "email" for c in cols):
            body.append(unique)
        if t.machine:
            terminal = [s for s in t.machine["states"] if s in ("completed", "cancelled", "closed", "done", "void", "paid",
                                                                 "rejected", "fulfilled", "delivered", "terminated",
                                                                 "declined", "called_off", "played", "sold", "discarded",
                                                                 "harvested", "abandoned", "approved", "filled", "reached", "missed")]
            if terminal:
                body.append(_require({"not_in": [{"var": "row.status"}, terminal]},
                                     f"{W.article(W.label(t))} in status {' or '.join(terminal)} cannot be changed",
                                     _refuse_states(t, terminal)))
        body.append({"op": "update", "target": "row", "table": t.name, "skip_none": True,
                     "set": {c.name: value_of(c) for c in cols}})
        return self.tool(
            f"update_{snake(t.label)}", "write", "update", params, body, {"var": "row"}, _row_schema(t), _row_fields(t),
            what=f"Changes the {W.join([W.short_phrase(c) for c in cols])} of {W.article(W.label(t))}; "
                 f"values left out stay as they are",
            needs=W.sentence(f"It needs the {W.label(t)}'s id and at least one new value"),
            subject=subject("update", t, sets=[c.name for c in cols], keys={t.pk: t.name}))

    def transition(self, t: TableSpec, verb: str, sources: list[str], target: str) -> ToolSpec:
        others = [s for s in t.machine["states"] if s not in sources]
        body = [_load("row", t, t.pk),
                _require({"in": [{"var": "row.status"}, sources]},
                         f"only {W.article(W.label(t))} in status {' or '.join(sources)} can be {W.participle(verb)}",
                         _refuse_states(t, others)),
                {"op": "update", "target": "row", "table": t.name, "set": {"status": {"const": target}}}]
        return self.tool(
            f"{verb}_{snake(t.label)}", "write", "transition", {t.pk: id_param(t)}, body, {"var": "row"},
            _row_schema(t), _row_fields(t),
            what=f"{W.third_person(W.verb_words(verb)).capitalize()} {W.article(W.label(t))}: its status goes from "
                 f"{W.join([W.status_words(s) for s in sources], 'or')} to {W.status_words(target)}",
            effect=self._transition_effect(t, verb, target),
            subject=subject("transition", t, keys={t.pk: t.name}, transition={"from": list(sources), "to": target}))

    def _transition_effect(self, t: TableSpec, verb: str, target: str) -> str:
        name = (t.machine or {}).get("name")
        if name == "resource" and target == "closed":
            return f"A closed {W.label(t)} takes no new bookings; existing bookings stay as they are"
        if name == "resource" and target == "open":
            return f"The {W.label(t)} can be booked again"
        if name == "account" and target == "suspended" and self.rules["check_account_active"]:
            return f"A suspended {W.label(t)} cannot make bookings or open new records until reactivated"
        if name == "booking" and target == "completed":
            return "A completed booking can no longer be cancelled"
        return ""

    def delete(self, t: TableSpec) -> ToolSpec:
        body: list[dict[str, Any]] = [_load("row", t, t.pk)]
        for child, fk in self.children(t):
            body.append(_require({"no_rows": {"table": child.name, "col": fk.name, "value": {"param": t.pk}}},
                                 f"the {W.label(t)} still has {W.plural(child)}; remove them first",
                                 f"{W.article(W.label(t))} that still has {W.plural(child)}"))
        body.append({"op": "delete", "target": "row", "table": t.name, "pk": t.pk})
        return self.tool(f"delete_{snake(t.label)}", "write", "delete", {t.pk: id_param(t)}, body,
                         {"object": {"deleted": {"param": t.pk}}},
                         {"type": "object", "properties": {"deleted": {"type": "string"}}},
                         [{"name": "deleted", "type": "string", "path": "deleted"}],
                         what=f"Deletes {W.article(W.label(t))} for good, when nothing else refers to it",
                         subject=subject("delete", t, keys={t.pk: t.name}))

    # -- multi-table business actions -------------------------------------------------------

    def booking_parts(self, booking: TableSpec) -> tuple[ColumnSpec, TableSpec, ColumnSpec, int] | None:
        """(foreign key to the resource, the resource, its capacity column, places allowed per booking)."""
        pair = next(((fk, p) for fk, p in self.parents(booking) if p.role == "resource"), None)
        if pair is None or not booking.has("quantity"):
            return None
        capacity = next((c for c in pair[1].columns if _kind(c) == "capacity"), None)
        if capacity is None:
            return None
        # A booking never takes more than its own kind allows (a visit is for one person) nor the domain's limit.
        m = GENERATOR_RE.match(booking.column("quantity").generator)
        kind_max = int((m.group("args") or "1,99").split(",")[1]) if m and m.group("args") else 99
        return pair[0], pair[1], capacity, min(self.rules["max_per_booking"], kind_max)

    def book(self, booking: TableSpec) -> ToolSpec | None:
        parts = self.booking_parts(booking)
        if parts is None:
            return None
        _rfk, resource, capacity, limit = parts
        units = W.capacity_unit(capacity)
        params: dict[str, Param] = {}
        body: list[dict[str, Any]] = []
        values: dict[str, Any] = {booking.pk: {"new_id": booking.prefix}}
        checks: list[dict[str, Any]] = []
        keys = {}
        holders = []
        for fk, parent in self.parents(booking):
            params[fk.name] = id_param(parent, fk.name)
            alias = "resource" if parent is resource else f"parent_{snake(parent.label)}"
            body.append(_load(alias, parent, fk.name))
            values[fk.name] = {"param": fk.name}
            keys[fk.name] = parent.name
            if parent is not resource:
                holders.append(parent)
                rule = self._active_check(alias, parent)
                if rule:
                    checks.append(rule)
        params["quantity"] = param("quantity", "integer",
                                   f"How many {units} to book, from 1 to {limit}" if limit > 1 else f"How many {units} to book: always 1",
                                   f"the number of {units}", minimum=1, maximum=limit)
        for c in self._settable(booking):
            if c.name == "quantity":
                continue
            params[c.name] = set_param(c)
            values[c.name] = value_of(c)
        if resource.has("status"):
            body.append(_require({"eq": [{"var": "resource.status"}, {"const": "open"}]},
                                 f"the {W.label(resource)} is not open for booking",
                                 _refuse_states(resource, [s for s in resource.machine["states"] if s != "open"])))
        body.extend(checks)
        body.append(_require({"ge": [{"var": f"resource.{capacity.name}"}, {"param": "quantity"}]},
                             f"not enough {units} left on this {W.label(resource)}",
                             f"more {units} than the {W.label(resource)} has left"))
        body.append({"op": "update", "target": "resource", "table": resource.name,
                     "set": {capacity.name: {"sub": [{"var": f"resource.{capacity.name}"}, {"param": "quantity"}]}}})
        values["quantity"] = {"param": "quantity"}
        if booking.has("status"):
            values["status"] = {"const": "confirmed"}
        for c in booking.columns:
            if c.generator == "created":
                values[c.name] = {"now": True}
        body.append({"op": "insert", "as": "booking", "table": booking.name, "pk": booking.pk, "values": values})
        holder = W.join([W.article(W.label(p)) for p in holders]) or "a customer"
        return self.tool(
            f"book_{snake(resource.label)}", "action", "book", params, body, {"var": "booking"},
            _row_schema(booking), _row_fields(booking),
            what=f"Books {units} on {W.article(W.label(resource))} for {holder}, creating a confirmed {W.label(booking)}",
            effect=f"Booking lowers the {W.label(resource)}'s {W.short_phrase(capacity)} by the number booked",
            subject=subject("book", booking, sets=[p for p in params], keys=keys))

    def cancel_booking(self, booking: TableSpec) -> ToolSpec | None:
        parts = self.booking_parts(booking)
        if parts is None or not booking.has("status"):
            return None
        rfk, resource, capacity, _limit = parts
        units = W.capacity_unit(capacity)
        sources = ["pending", "confirmed"]
        body = [_load("booking", booking, booking.pk),
                _require({"in": [{"var": "booking.status"}, sources]},
                         f"only a pending or confirmed {W.label(booking)} can be cancelled",
                         _refuse_states(booking, [s for s in booking.machine["states"] if s not in sources])),
                {"op": "load", "as": "resource", "table": resource.name, "key": {"var": f"booking.{rfk.name}"},
                 "what": resource.label},
                {"op": "update", "target": "resource", "table": resource.name,
                 "set": {capacity.name: {"add": [{"var": f"resource.{capacity.name}"}, {"var": "booking.quantity"}]}}},
                {"op": "update", "target": "booking", "table": booking.name, "set": {"status": {"const": "cancelled"}}}]
        return self.tool(
            f"cancel_{snake(booking.label)}", "action", "cancel_booking", {booking.pk: id_param(booking)}, body,
            {"var": "booking"}, _row_schema(booking), _row_fields(booking),
            what=f"Cancels {W.article(W.label(booking))} that is pending or confirmed",
            effect=f"Cancelling gives the {units} back to the {W.label(resource)}",
            subject=subject("cancel_booking", booking, keys={booking.pk: booking.name},
                            transition={"from": sources, "to": "cancelled"}))

    def payment_parts(self, payment: TableSpec) -> tuple[ColumnSpec, TableSpec, ColumnSpec] | None:
        """(foreign key to the invoice, the invoice, its amount-due column)."""
        pair = next(((fk, p) for fk, p in self.parents(payment) if p.role == "invoice"), None)
        if pair is None or not payment.has("amount") or not pair[1].has("status"):
            return None
        due = next((c for c in pair[1].columns if _kind(c) == "amount"), None)
        return (pair[0], pair[1], due) if due is not None else None

    def pay(self, payment: TableSpec) -> ToolSpec | None:
        parts = self.payment_parts(payment)
        if parts is None:
            return None
        ifk, invoice, due = parts
        exact = self.rules["exact_payment"]
        inv = W.label(invoice)
        params: dict[str, Param] = {
            ifk.name: id_param(invoice, ifk.name),
            "amount": param("amount", "number",
                            f"The amount to pay; it must equal the {W.short_phrase(due)} of the {inv} exactly" if exact
                            else f"The amount to pay, at most the {W.short_phrase(due)} of the {inv}",
                            "the amount", minimum=0.01),
        }
        values: dict[str, Any] = {payment.pk: {"new_id": payment.prefix}, ifk.name: {"param": ifk.name},
                                  "amount": {"param": "amount"}}
        for c in self._settable(payment):
            if c.name not in values and not c.nullable:
                params[c.name] = set_param(c)
                values[c.name] = value_of(c)
        payable = ["issued", "partially_paid"]
        body: list[dict[str, Any]] = [
            _load("invoice", invoice, ifk.name),
            _require({"in": [{"var": "invoice.status"}, payable]}, f"the {W.label(invoice)} is not open for payment",
                     _refuse_states(invoice, [s for s in invoice.machine["states"] if s not in payable]))]
        if exact:
            body.append(_require({"eq": [{"param": "amount"}, {"var": f"invoice.{due.name}"}]},
                                 f"the amount must equal the {W.words(due.name)} exactly",
                                 f"an amount that differs from the {W.short_phrase(due)}"))
        else:
            body.append(_require({"le": [{"param": "amount"}, {"var": f"invoice.{due.name}"}]},
                                 f"the amount exceeds the {W.words(due.name)}",
                                 f"an amount larger than the {W.short_phrase(due)}"))
        for c in payment.columns:
            if c.generator == "created":
                values[c.name] = {"now": True}
        body.append({"op": "insert", "as": "payment", "table": payment.name, "pk": payment.pk, "values": values})
        body.append({"op": "update", "target": "invoice", "table": invoice.name,
                     "set": {due.name: {"round": [{"sub": [{"var": f"invoice.{due.name}"}, {"param": "amount"}]}, 2]}}})
        body.append({"op": "if", "when": "nothing is left to pay", "cond": {"le": [{"var": f"invoice.{due.name}"}, {"const": 0}]},
                     "then": [{"op": "update", "target": "invoice", "table": invoice.name, "set": {"status": {"const": "paid"}}}]})
        body.append({"op": "if", "when": "a balance remains", "cond": {"gt": [{"var": f"invoice.{due.name}"}, {"const": 0}]},
                     "then": [{"op": "update", "target": "invoice", "table": invoice.name,
                               "set": {"status": {"const": "partially_paid"}}}]})
        returns = {"object": {"payment": {"var": "payment"}, "invoice_status": {"var": "invoice.status"},
                              "balance": {"var": f"invoice.{due.name}"}}}
        effect = (f"The {inv} is then paid in full" if exact else
                  f"The amount is taken off the {W.short_phrase(due)}: the {inv} becomes paid when nothing is left, "
                  f"otherwise partially paid")
        return self.tool(
            f"pay_{snake(invoice.label)}", "action", "pay", params, body, returns,
            {"type": "object", "properties": {"payment": _row_schema(payment), "invoice_status": {"type": "string"},
                                              "balance": {"type": "number"}}},
            _row_fields(payment, "payment.") + [{"name": "invoice_status", "type": "string", "path": "invoice_status"},
                                                 {"name": "balance", "type": "number", "path": "balance"}],
            what=f"Pays {W.article(inv)} that is issued or partially paid, recording {W.article(W.label(payment))}",
            effect=effect,
            subject=subject("pay", payment, sets=[p for p in params], keys={ifk.name: invoice.name}))

    def stock_tools(self, item: TableSpec) -> list[ToolSpec]:
        stock = next((c for c in item.columns if _kind(c) == "stock"), None)
        if stock is None:
            return []
        label = W.label(item)
        params = {item.pk: id_param(item),
                  "quantity": param("quantity", "integer", "How many units, at least 1", "the number of units", minimum=1)}
        restock = self.tool(
            f"restock_{snake(item.label)}", "write", "restock", params,
            [_load("item", item, item.pk),
             {"op": "update", "target": "item", "table": item.name,
              "set": {stock.name: {"add": [{"var": f"item.{stock.name}"}, {"param": "quantity"}]}}}],
            {"var": "item"}, _row_schema(item), _row_fields(item),
            what=f"Adds units to the stock of {W.article(label)} ({W.short_phrase(stock)})",
            effect=f"The {W.short_phrase(stock)} grows by the quantity given",
            subject=subject("restock", item, sets=[stock.name], keys={item.pk: item.name}))
        params = {item.pk: id_param(item),
                  "quantity": param("quantity", "integer", "How many units, at least 1", "the number of units", minimum=1)}
        withdraw = self.tool(
            f"withdraw_{snake(item.label)}_stock", "write", "withdraw", params,
            [_load("item", item, item.pk),
             _require({"ge": [{"var": f"item.{stock.name}"}, {"param": "quantity"}]},
                      f"not enough {stock.name.replace('_', ' ')} left", "more units than are in stock"),
             {"op": "update", "target": "item", "table": item.name,
              "set": {stock.name: {"sub": [{"var": f"item.{stock.name}"}, {"param": "quantity"}]}}}],
            {"var": "item"}, _row_schema(item), _row_fields(item),
            what=f"Takes units out of the stock of {W.article(label)} ({W.short_phrase(stock)})",
            effect=f"The {W.short_phrase(stock)} shrinks by the quantity given",
            subject=subject("withdraw", item, sets=[stock.name], keys={item.pk: item.name}))
        return [restock, withdraw]

    # -- computations -----------------------------------------------------------------------

    def total_for_parent(self, t: TableSpec, fk: ColumnSpec, parent: TableSpec, col: ColumnSpec, fn: str) -> ToolSpec:
        word = {"sum": "total", "avg": "average"}[fn]
        body = [_load("parent", parent, fk.name),
                {"op": "query", "as": "rows", "table": t.name, "order_by": t.pk, "pk": t.pk,
                 "where": [{"col": fk.name, "cmp": "eq", "value": {"param": fk.name}, "skip_if_none": False}]},
                {"op": "aggregate", "as": "result", "source": "rows", "fn": fn, "col": col.name},
                {"op": "aggregate", "as": "n", "source": "rows", "fn": "count"}]
        return self.tool(
            f"{word}_{snake(col.name)}_for_{snake(parent.label)}", "compute", "aggregate",
            {fk.name: id_param(parent, fk.name)}, body,
            {"object": {fk.name: {"param": fk.name}, word: {"var": "result"}, "count": {"var": "n"}}},
            {"type": "object", "properties": {fk.name: {"type": "string"}, word: {"type": "number"}, "count": {"type": "integer"}}},
            [{"name": fk.name, "type": "string", "path": fk.name}, {"name": word, "type": "number", "path": word},
             {"name": "count", "type": "integer", "path": "count"}],
            what=f"Computes the {word} {W.short_phrase(col)} over all the {W.plural(t)} of one {W.label(parent)}, "
                 f"and how many there are",
            subject=subject("aggregate", t, parent=parent, keys={fk.name: parent.name}, measure={"fn": fn, "col": col.name}))

    def count_by_status(self, t: TableSpec) -> ToolSpec:
        body = [{"op": "query", "as": "rows", "table": t.name, "order_by": t.pk, "pk": t.pk, "where": []},
                {"op": "count_by", "as": "counts", "source": "rows", "col": "status"},
                {"op": "aggregate", "as": "n", "source": "rows", "fn": "count"}]
        states = [W.status_words(s) for s in t.machine["states"]] if t.machine else []
        return self.tool(
            f"count_{snake(t.name)}_by_status", "compute", "count_by_status", {}, body,
            {"object": {"counts": {"var": "counts"}, "total": {"var": "n"}}},
            {"type": "object", "properties": {"counts": {"type": "object"}, "total": {"type": "integer"}}},
            [{"name": "total", "type": "integer", "path": "total"}],
            what=f"Counts all the {W.plural(t)} per status ({W.join(states, 'or')}) and in total",
            subject=subject("count_by_status", t))

    def status_rate(self, t: TableSpec, fk: ColumnSpec, parent: TableSpec) -> ToolSpec:
        status = t.column("status")
        params = {fk.name: id_param(parent, fk.name),
                  "status": param("status", "string", f"The status to measure, one of {W.join(list(status.values or []), 'or')}",
                                  "a status", enum=list(status.values or []))}
        body = [_load("parent", parent, fk.name),
                {"op": "query", "as": "rows", "table": t.name, "order_by": t.pk, "pk": t.pk,
                 "where": [{"col": fk.name, "cmp": "eq", "value": {"param": fk.name}, "skip_if_none": False}]},
                {"op": "query", "as": "matching", "table": t.name, "order_by": t.pk, "pk": t.pk,
                 "where": [{"col": fk.name, "cmp": "eq", "value": {"param": fk.name}, "skip_if_none": False},
                           {"col": "status", "cmp": "eq", "value": {"param": "status"}, "skip_if_none": False}]},
                {"op": "aggregate", "as": "n", "source": "rows", "fn": "count"},
                {"op": "aggregate", "as": "k", "source": "matching", "fn": "count"}]
        return self.tool(
            f"{snake(t.label)}_status_rate_for_{snake(parent.label)}", "compute", "status_rate", params, body,
            {"object": {"matching": {"var": "k"}, "total": {"var": "n"}, "rate": {"ratio": [{"var": "k"}, {"var": "n"}]}}},
            {"type": "object", "properties": {"matching": {"type": "integer"}, "total": {"type": "integer"}, "rate": {"type": "number"}}},
            [{"name": "rate", "type": "number", "path": "rate"}],
            what=f"Computes the share of one {W.label(parent)}'s {W.plural(t)} that are in a given status "
                 f"(matching, total and rate from 0 to 1)",
            subject=subject("status_rate", t, parent=parent, keys={fk.name: parent.name}))


def _declared_raises(steps: list[dict[str, Any]]) -> list[dict[str, str]]:
    raises: list[dict[str, str]] = []
    for step in steps:
        if step["op"] == "load":
            raises.append({"type": "KeyError", "when": f"no {step['what']} has the given id"})
        elif step["op"] == "require":
            raises.append({"type": step.get("error", "ValueError"), "when": step["message"]})
        elif step["op"] == "validate":
            raises.append({"type": "ValueError", "when": f"{step['param']} is missing or invalid"})
        elif step["op"] == "if":
            raises.extend(_declared_raises(step["then"]))
    return raises


# ---------------------------------------------------------------------------------------------
# Who owns what: the customer's own records


def person_tables(tables: list[TableSpec]) -> list[TableSpec]:
    return [t for t in tables if t.role == "person"]


def owner_paths(tables: list[TableSpec]) -> dict[str, list[str]]:
    """Tables whose rows belong to a customer, each with its chain of foreign keys up to the person
    table (``{"care_bookings": ["pet_id", "owner_id"], "owners": []}``); the shortest chain wins."""
    paths: dict[str, list[str]] = {}
    for t in tables:  # parents come first, so a parent's chain is known before its children's
        if t.role == "person":
            paths[t.name] = []
            continue
        best: list[str] | None = None
        for c in t.columns:
            if c.fk and c.fk["table"] in paths:
                chain = [c.name] + paths[c.fk["table"]]
                if best is None or len(chain) < len(best):
                    best = chain
        if best is not None:
            paths[t.name] = best
    return paths


def essential_tool_names(tables: list[TableSpec], tools: list[ToolSpec]) -> set[str]:
    """Tools every domain keeps (never trimmed), so a customer-service task can always be built:
    find the customer by e-mail, read and change their details, reach every record they own, find
    and book resources, cancel, pay, open requests, and move bookings and tickets along."""
    owned = owner_paths(tables)
    by_name = {t.name: t for t in tables}
    keep: set[str] = set()
    for tool in tools:
        subj = tool.contract["subject"]
        table = by_name[subj["table"]]
        template = subj["template"]
        machine = (table.machine or {}).get("name")
        customer_facing = (
            template == "get"
            or (template == "search" and table.role in ("person", "resource", "provider", "place"))
            or (template == "update" and table.role == "person")
            or (template == "list_for_parent" and (subj["parent"] in owned or table.role in ("booking", "payment")))
            or template in ("book", "cancel_booking", "pay", "restock", "withdraw")
            or (template == "create" and table.role in ("person", "record", "invoice", "resource"))
            or (template == "transition" and machine in ("booking", "ticket"))
        )
        if customer_facing:
            keep.add(tool.name)
    return keep


def design_tools(draft: dict[str, Any], tables: list[TableSpec]) -> tuple[list[ToolSpec], dict[str, Any]]:
    rng = random.Random(f"tools:{draft['seed']}")
    f = _ToolFactory(tables, rng)
    candidates: list[ToolSpec] = []

    def add(tool: ToolSpec | None) -> None:
        if tool is not None and all(t.name != tool.name for t in candidates):
            candidates.append(tool)

    for t in tables:
        add(f.get(t))
        add(f.search(t))
        for fk, parent in f.parents(t):
            add(f.list_for_parent(t, fk, parent))
        if t.role == "booking":
            add(f.book(t))
            add(f.cancel_booking(t))
        elif t.role == "payment":
            add(f.pay(t))
        else:
            add(f.create(t))
        add(f.update(t))
        if t.machine:
            for verb, sources, target in t.machine["transitions"]:
                add(f.transition(t, verb, sources, target))
        if t.role not in ("payment",):
            add(f.delete(t))
        for tool in f.stock_tools(t):
            add(tool)
        nums = [c for c in t.columns if c.type == "number" and not c.nullable]
        for fk, parent in f.parents(t)[:1]:
            if nums:
                add(f.total_for_parent(t, fk, parent, nums[0], "sum"))
                if len(nums) > 1 or rng.random() < 0.3:
                    add(f.total_for_parent(t, fk, parent, nums[-1], "avg"))
            if t.has("status"):
                add(f.status_rate(t, fk, parent))
        if t.has("status"):
            add(f.count_by_status(t))

    keep = essential_tool_names(tables, candidates)
    essential = [t for t in candidates if t.name in keep]
    optional = [t for t in candidates if t.name not in keep]
    if len(essential) > MAX_TOOLS:
        raise ValueError(f"{len(essential)} essential tools exceed the limit of {MAX_TOOLS}")
    target = rng.randint(32, 70)
    rng.shuffle(optional)
    room = max(0, min(target, MAX_TOOLS) - len(essential))
    chosen = essential + optional[:room]
    chosen.sort(key=lambda t: t.name)
    return chosen, f.rules


# ---------------------------------------------------------------------------------------------
# Stage 4: the domain's description, from what it really contains


def describe_domain(draft: dict[str, Any], tables: list[TableSpec], tools: list[ToolSpec], rules: dict[str, Any]) -> str:
    """One to three sentences from what the domain really contains: who its customers are and what
    they do (from the booking, payment and request tools kept), what else it keeps, and its rules."""
    by_name = {t.name: t for t in tables}
    owned = owner_paths(tables)
    people = person_tables(tables)
    who = W.plural(people[0]) if people else "customers"
    doings: list[str] = []  # what the customers do
    others_do: list[str] = []  # what other parties do (an employer pays placement invoices)
    mentioned: set[str] = {p.name for p in people}

    def for_whom(holder: TableSpec) -> str:
        return "" if holder.role == "person" else f" for their {W.plural(holder)}"

    for tool in sorted(tools, key=lambda t: t.name):
        subj = tool.contract["subject"]
        if subj["template"] == "book":
            booking = by_name[subj["table"]]
            resource = next(by_name[k] for k in subj["keys"].values() if by_name[k].role == "resource")
            holders = [by_name[k] for k in subj["keys"].values() if by_name[k].role != "resource"]
            providers = [p for _c, p in _parents_of(resource, by_name) if p.role in ("provider", "place")]
            link = (" with " if providers and providers[0].role == "provider" else " at ") if providers else ""
            text = f"book {W.plural(resource)}" + (link + W.plural(providers[0]) if providers else "")
            holder = next((h for h in holders if h.name in owned), holders[0] if holders else None)
            if holder is not None and holder.name in owned:
                doings.append(text + for_whom(holder))
            elif holder is not None:
                others_do.append(f"{W.plural(holder)} {text}")
            mentioned |= {booking.name, resource.name} | {p.name for p in providers[:1]} | {h.name for h in holders}
        elif subj["template"] == "pay":
            invoice = by_name[next(iter(subj["keys"].values()))]
            if invoice.name in owned:
                doings.append(f"pay {W.plural(invoice)}")
            else:
                payer = next((p for _c, p in _parents_of(invoice, by_name)), None)
                others_do.append(f"{W.plural(payer) if payer else 'clients'} pay {W.plural(invoice)}")
                if payer is not None:
                    mentioned.add(payer.name)
            mentioned |= {invoice.name, subj["table"]}
        elif subj["template"] == "create" and by_name[subj["table"]].role == "record" \
                and (by_name[subj["table"]].machine or {}).get("name") == "ticket" and subj["table"] in owned:
            doings.append(f"file {W.plural(by_name[subj['table']])}")
            mentioned.add(subj["table"])
    if not doings:
        mine = [t for t in tables if t.name in owned and t.role != "person" and len(owned[t.name]) == 1]
        doings.append(f"keep their {W.join([W.plural(t) for t in mine[:3]])}" if mine else "are served")
        mentioned |= {t.name for t in mine[:3]}
    place = draft.get("place", "")
    noun = str(draft.get("noun", "service")).lower()
    first = f"{W.article(noun)} in {place} where {who} {W.join(doings)}"
    if others_do:
        first += f", and {W.join(others_do)}"
    others = [W.plural(t) for t in tables if t.name not in mentioned]
    second = f"It also keeps {W.join(others)}" if others else ""
    rule_parts = []
    if any(t.contract["subject"]["template"] == "pay" for t in tools):
        rule_parts.append("bills must be paid in full" if rules.get("exact_payment") else "bills may be paid in parts")
    for tool in tools:
        if tool.contract["subject"]["template"] == "book":
            most = tool.parameters["properties"]["quantity"]["maximum"]
            booking = W.label(by_name[tool.contract["subject"]["table"]])
            resource = next(by_name[k] for k in tool.contract["subject"]["keys"].values() if by_name[k].role == "resource")
            units = W.capacity_unit(next(c for c in resource.columns if _kind(c) == "capacity"))
            share = "one" if most == 1 else f"at most {most}"
            rule_parts.append(f"{W.article(booking)} takes {share} of {W.article(W.label(resource))}'s {units}")
    gated = {tool.contract["subject"]["template"] for tool in tools if checks_active(tool, people)}
    if gated and people:
        acts = W.join(["book" if "book" in gated else "", "open new records" if "create" in gated else ""], "or")
        rule_parts.append(f"suspended {W.plural(people[0])} cannot {acts}")
    third = W.join(rule_parts)
    return " ".join(W.sentence(s) for s in (first, second, third) if s)


def checks_active(tool: ToolSpec, people: list[TableSpec]) -> bool:
    """Whether a tool refuses rows of ``people`` (parents it loads) whose status is not active."""
    aliases = {f"parent_{snake(p.label)}.status" for p in people}
    for step in tool.contract["steps"]:
        cond = step.get("cond", {}) if step["op"] == "require" else {}
        if "eq" in cond and cond["eq"][0].get("var") in aliases and cond["eq"][1] == {"const": "active"}:
            return True
    return False


def _parents_of(table: TableSpec, by_name: dict[str, TableSpec]) -> list[tuple[ColumnSpec, TableSpec]]:
    return [(c, by_name[c.fk["table"]]) for c in table.columns if c.fk]

# ---------------------------------------------------------------------------------------------
# Values and fixtures


def build_fixture(tables: list[TableSpec], seed: int, rows_per_table: tuple[int, int] = (4, 6)) -> dict[str, Any]:
    """A rich, valid state: every table populated, foreign keys resolved, every status present."""
    rng = random.Random(f"fixture:{seed}")
    maker = ValueMaker(rng)
    state: dict[str, Any] = {t.name: {} for t in tables}
    for t in tables:  # tables are in parent-first order
        count = rng.randint(*rows_per_table)
        states = list(t.machine["states"]) if t.machine else []
        for i in range(count):
            pk = f"{t.prefix}_{rng.getrandbits(24):06x}"
            row: dict[str, Any] = {}
            for c in t.columns:
                if c.generator == "pk":
                    row[c.name] = pk
                elif c.generator == "fk":
                    row[c.name] = rng.choice(sorted(state[c.fk["table"]]))
                elif c.generator == "status":
                    # Cycle through the states (the initial one twice as often), so every branch has rows.
                    row[c.name] = states[i % len(states)] if i % 2 else t.machine["initial"]
                else:
                    row[c.name] = maker.make(c, t.label)
                    # An e-mail address identifies a customer: never two rows with the same one.
                    while _kind(c) == "email" and any(r[c.name] == row[c.name] for r in state[t.name].values()):
                        row[c.name] = maker.make(c, t.label)
            state[t.name][pk] = row
    return state
