"""Procedural phase-1 stages: domain draft, database schema, tool specifications with contracts.

Deterministic: everything is drawn from ``random.Random(seed)``, so the same seed gives the same
domain. Variety comes from the sector, the subset of entity archetypes, name alternatives,
optional columns, business-rule variants (exact or partial payments, booking limits, account
checks) and the subset of tool templates kept.
"""

from __future__ import annotations

import random
import re
from typing import Any

from ..contract import contract_tables
from ..spec import JSON_TYPES, ColumnSpec, TableSpec, ToolSpec
from ..values import GENERATOR_RE, ValueMaker
from . import vocabulary as V
from .codegen import describe_contract



def snake(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _plural_label(table: TableSpec) -> str:
    return table.name


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
    return {"name": name, "slug": slug, "sector": sector.key, "seed": seed,
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
    policy = "semantic" if ctype == "text" else "exempt" if optional else "exact"
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
        pk = f"{snake(label)}_id"
        columns = [ColumnSpec(pk, "string", policy="exempt", generator="pk", description=f"id of the {label}")]
        for parent in t.parents.split():
            ptable, plabel = names[parent]
            columns.append(ColumnSpec(f"{snake(plabel)}_id", "string", fk={"table": ptable, "column": f"{snake(plabel)}_id"},
                                      policy="exact", generator="fk", description=f"the {plabel} this {label} belongs to"))
        for token in t.fields.split():
            col = _column_from_dsl(token, rng)
            if col is not None and not any(c.name == col.name for c in columns):
                columns.append(col)
        machine = None
        if t.machine:
            machine = V.MACHINES[t.machine]
            columns.append(ColumnSpec("status", "enum", values=list(machine["states"]), default=machine["initial"],
                                      policy="exact", generator="status", description="lifecycle status"))
        tables.append(TableSpec(name=table_name, label=label, pk=pk, columns=columns, role=t.role, prefix=t.prefix,
                                machine=machine, description=f"{label} records of the domain"))
    return tables


# ---------------------------------------------------------------------------------------------
# Stage 3: tools


def _json_type(col: ColumnSpec) -> str:
    return JSON_TYPES[col.type]


def _param_schema(col: ColumnSpec, description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string" if col.type in ("date", "datetime") else _json_type(col)}
    if col.type == "enum":
        schema["enum"] = list(col.values or [])
    if col.type == "date":
        schema["format"] = "date"
    if col.generator.startswith(("capacity", "stock", "int", "money", "amount", "number")) and col.type in ("integer", "number"):
        schema["minimum"] = 0
    schema["description"] = description or col.description or col.name.replace("_", " ")
    return schema


def _validate_step(param: str, col: ColumnSpec | None, ptype: str, optional: bool, **extra: Any) -> dict[str, Any]:
    step: dict[str, Any] = {"op": "validate", "param": param, "type": ptype, "optional": optional}
    if col is not None and col.type == "enum":
        step["enum"] = list(col.values or [])
    if col is not None and col.type in ("string", "text") and not optional:
        step["min_length"] = 1
    step.update(extra)
    return step


def _ptype(col: ColumnSpec) -> str:
    if col.type == "date":
        return "date"
    return {"string": "string", "text": "string", "enum": "string", "datetime": "string",
            "integer": "integer", "number": "number", "boolean": "boolean"}[col.type]


def _row_schema(table: TableSpec) -> dict[str, Any]:
    return {"type": "object", "properties": {c.name: {"type": _json_type(c)} for c in table.columns}}


def _row_fields(table: TableSpec, prefix: str = "") -> list[dict[str, str]]:
    return [{"name": c.name, "type": _json_type(c), "path": f"{prefix}{c.name}"} for c in table.columns]


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

    def tool(self, name: str, description: str, kind: str, params: dict[str, tuple[dict[str, Any], bool, Any]],
             contract_steps: list[dict[str, Any]], returns: Any, returns_schema: dict[str, Any],
             output_fields: list[dict[str, str]], template: str) -> ToolSpec:
        contract = {
            "params": {p: {"type": schema.get("type"), "default": default} for p, (schema, _req, default) in params.items()},
            "required": [p for p, (_s, req, _d) in params.items() if req],
            "steps": contract_steps,
            "returns": returns,
        }
        parameters = {"type": "object",
                      "properties": {p: schema for p, (schema, _r, _d) in params.items()},
                      "required": contract["required"], "additionalProperties": False}
        reads, writes = contract_tables(contract)
        pre, post = describe_contract(contract)
        raises = _declared_raises(contract_steps)
        return ToolSpec(name=name, description=description, kind=kind, parameters=parameters, returns=returns_schema,
                        output_fields=output_fields, preconditions=pre, postconditions=post, raises=raises,
                        reads=sorted(reads), writes=sorted(writes), contract=contract, template=template)

    # -- reads ------------------------------------------------------------------------------

    def get(self, t: TableSpec) -> ToolSpec:
        pk = t.pk
        return self.tool(
            f"get_{snake(t.label)}", f"Get one {t.label} by its id.", "read",
            {pk: (_param_schema(t.column(pk)), True, None)},
            [_validate_step(pk, t.column(pk), "string", False), _load("row", t, pk)],
            {"var": "row"}, _row_schema(t), _row_fields(t), "get")

    def search(self, t: TableSpec) -> ToolSpec | None:
        filters: list[tuple[str, ColumnSpec, str]] = []
        for c in t.columns:
            if c.type == "enum" and len(filters) < 2:
                filters.append((c.name, c, "eq"))
        text_cols = [c for c in t.columns if c.type == "string" and c.generator.startswith(("person", "title", "company", "city"))]
        if text_cols:
            filters.append((f"{text_cols[0].name}_contains", text_cols[0], "contains"))
        num_cols = [c for c in t.columns if c.type in ("number", "integer") and not c.nullable and c.generator not in ("pk",)]
        if num_cols:
            c = num_cols[0]
            filters.append((f"min_{c.name}", c, "ge"))
            filters.append((f"max_{c.name}", c, "le"))
        for c in t.columns:
            if c.fk and len(filters) < 6:
                filters.append((c.name, c, "eq"))
        if not filters:
            return None
        params: dict[str, tuple[dict[str, Any], bool, Any]] = {}
        steps: list[dict[str, Any]] = []
        where = []
        for pname, col, cmp in filters:
            ptype = "string" if cmp == "contains" else _ptype(col)
            schema = _param_schema(col, f"only {t.name} whose {col.name} " + {"eq": "equals this", "contains": "contains this text",
                                                                            "ge": "is at least this", "le": "is at most this"}[cmp])
            if cmp == "contains":
                schema = {"type": "string", "description": schema["description"]}
            params[pname] = (schema, False, None)
            steps.append(_validate_step(pname, col if cmp == "eq" else None, ptype, True))
            where.append({"col": col.name, "cmp": cmp, "value": {"param": pname}, "skip_if_none": True})
        params["limit"] = ({"type": "integer", "minimum": 1, "maximum": 100, "description": "maximum rows to return"}, False, 20)
        steps.append({"op": "validate", "param": "limit", "type": "integer", "optional": True, "min": 1, "max": 100})
        steps.append({"op": "query", "as": "items", "table": t.name, "where": where, "order_by": t.pk, "pk": t.pk,
                      "limit": {"param": "limit"}})
        return self.tool(
            f"search_{snake(t.name)}", f"Search {t.name} with optional filters; returns matching rows and their count.",
            "read", params, steps, {"items": "items"},
            {"type": "object", "properties": {"items": {"type": "array", "items": _row_schema(t)}, "count": {"type": "integer"}}},
            _row_fields(t, "items.0.") + [{"name": "count", "type": "integer", "path": "count"}], "search")

    def list_for_parent(self, t: TableSpec, fk: ColumnSpec, parent: TableSpec) -> ToolSpec:
        steps = [_validate_step(fk.name, fk, "string", False), _load("parent", parent, fk.name),
                 {"op": "query", "as": "items", "table": t.name, "order_by": t.pk, "pk": t.pk,
                  "where": [{"col": fk.name, "cmp": "eq", "value": {"param": fk.name}, "skip_if_none": False}]}]
        return self.tool(
            f"list_{snake(t.name)}_for_{snake(parent.label)}", f"List the {t.name} of one {parent.label}.", "read",
            {fk.name: (_param_schema(fk, f"id of the {parent.label}"), True, None)}, steps, {"items": "items"},
            {"type": "object", "properties": {"items": {"type": "array", "items": _row_schema(t)}, "count": {"type": "integer"}}},
            _row_fields(t, "items.0.") + [{"name": "count", "type": "integer", "path": "count"}], "list_for_parent")

    # -- writes -----------------------------------------------------------------------------

    def _settable(self, t: TableSpec) -> list[ColumnSpec]:
        return [c for c in t.columns if c.generator not in ("pk", "fk", "status", "created")]

    def create(self, t: TableSpec) -> ToolSpec:
        params: dict[str, tuple[dict[str, Any], bool, Any]] = {}
        steps: list[dict[str, Any]] = []
        values: dict[str, Any] = {t.pk: {"new_id": t.prefix}}
        loads = []
        for fk, parent in self.parents(t):
            params[fk.name] = (_param_schema(fk, f"id of the {parent.label}"), True, None)
            steps.append(_validate_step(fk.name, fk, "string", False))
            loads.append(_load(f"parent_{snake(parent.label)}", parent, fk.name))
            if self.rules["check_account_active"] and parent.machine and "active" in parent.machine["states"]:
                loads.append({"op": "require", "cond": {"eq": [{"var": f"parent_{snake(parent.label)}.status"}, {"const": "active"}]},
                              "error": "ValueError", "message": f"the {parent.label} must be active"})
            values[fk.name] = {"param": fk.name}
        for c in self._settable(t):
            required = not c.nullable
            extra: dict[str, Any] = {}
            if c.type in ("integer", "number") and c.generator.split("(")[0] in ("capacity", "stock", "int", "money", "amount", "number", "rating"):
                extra["min"] = 1 if c.generator.startswith("rating") else 0
                if c.generator.startswith("rating"):
                    extra["max"] = 5
            params[c.name] = (_param_schema(c), required, None)
            steps.append(_validate_step(c.name, c, _ptype(c), not required, **extra))
            values[c.name] = {"param": c.name}
        steps.extend(loads)
        if t.has("status"):
            values["status"] = {"const": t.machine["initial"]}
        for c in t.columns:
            if c.generator == "created":
                values[c.name] = {"now": True}
        steps.append({"op": "insert", "as": "new", "table": t.name, "pk": t.pk, "values": values})
        return self.tool(f"create_{snake(t.label)}", f"Create a new {t.label}.", "write", params, steps,
                         {"var": "new"}, _row_schema(t), _row_fields(t), "create")

    def update(self, t: TableSpec) -> ToolSpec | None:
        cols = [c for c in self._settable(t) if c.generator.split("(")[0] not in ("capacity", "stock", "amount", "dob")][:3]
        if not cols:
            return None
        params: dict[str, tuple[dict[str, Any], bool, Any]] = {t.pk: (_param_schema(t.column(t.pk)), True, None)}
        steps: list[dict[str, Any]] = [_validate_step(t.pk, t.column(t.pk), "string", False)]
        for c in cols:
            params[c.name] = (_param_schema(c, f"new {c.name.replace('_', ' ')}"), False, None)
            extra = {"min": 0} if c.type in ("integer", "number") else {}
            steps.append(_validate_step(c.name, c, _ptype(c), True, **extra))
        steps.append({"op": "require", "cond": {"any_set": [c.name for c in cols]}, "error": "ValueError",
                      "message": "give at least one field to update"})
        steps.append(_load("row", t, t.pk))
        if t.machine:
            terminal = [s for s in t.machine["states"] if s in ("completed", "cancelled", "closed", "done", "void",
                                                                 "paid", "rejected", "fulfilled", "delivered")]
            if terminal:
                steps.append({"op": "require", "cond": {"not_in": [{"var": "row.status"}, terminal]},
                              "error": "ValueError", "message": f"a {t.label} in status {'/'.join(terminal)} cannot be changed"})
        steps.append({"op": "update", "target": "row", "table": t.name, "skip_none": True,
                      "set": {c.name: {"param": c.name} for c in cols}})
        return self.tool(f"update_{snake(t.label)}", f"Update {', '.join(c.name for c in cols)} of a {t.label}.",
                         "write", params, steps, {"var": "row"}, _row_schema(t), _row_fields(t), "update")

    def transition(self, t: TableSpec, verb: str, sources: list[str], target: str) -> ToolSpec:
        steps = [_validate_step(t.pk, t.column(t.pk), "string", False), _load("row", t, t.pk),
                 {"op": "require", "cond": {"in": [{"var": "row.status"}, sources]}, "error": "ValueError",
                  "message": f"only a {t.label} in status {' or '.join(sources)} can be {verb}ed"},
                 {"op": "update", "target": "row", "table": t.name, "set": {"status": {"const": target}}}]
        return self.tool(f"{verb}_{snake(t.label)}", f"{verb.capitalize()} a {t.label}: status {'/'.join(sources)} → {target}.",
                         "write", {t.pk: (_param_schema(t.column(t.pk)), True, None)}, steps, {"var": "row"},
                         _row_schema(t), _row_fields(t), "transition")

    def delete(self, t: TableSpec) -> ToolSpec:
        steps: list[dict[str, Any]] = [_validate_step(t.pk, t.column(t.pk), "string", False), _load("row", t, t.pk)]
        for child, fk in self.children(t):
            steps.append({"op": "require", "cond": {"no_rows": {"table": child.name, "col": fk.name, "value": {"param": t.pk}}},
                          "error": "ValueError", "message": f"the {t.label} still has {child.name}; remove them first"})
        steps.append({"op": "delete", "target": "row", "table": t.name, "pk": t.pk})
        return self.tool(f"delete_{snake(t.label)}", f"Delete a {t.label} that nothing depends on.", "write",
                         {t.pk: (_param_schema(t.column(t.pk)), True, None)}, steps,
                         {"object": {"deleted": {"param": t.pk}}},
                         {"type": "object", "properties": {"deleted": {"type": "string"}}},
                         [{"name": "deleted", "type": "string", "path": "deleted"}], "delete")

    # -- multi-table business actions -------------------------------------------------------

    def book(self, booking: TableSpec) -> ToolSpec | None:
        resource_pair = next(((fk, p) for fk, p in self.parents(booking) if p.role == "resource"), None)
        if resource_pair is None or not booking.has("quantity"):
            return None
        rfk, resource = resource_pair
        capacity = next((c for c in resource.columns if c.generator.startswith("capacity")), None)
        if capacity is None:
            return None
        limit = self.rules["max_per_booking"]
        params: dict[str, tuple[dict[str, Any], bool, Any]] = {}
        steps: list[dict[str, Any]] = []
        values: dict[str, Any] = {booking.pk: {"new_id": booking.prefix}}
        loads: list[dict[str, Any]] = []
        for fk, parent in self.parents(booking):
            params[fk.name] = (_param_schema(fk, f"id of the {parent.label}"), True, None)
            steps.append(_validate_step(fk.name, fk, "string", False))
            alias = "resource" if parent is resource else f"parent_{snake(parent.label)}"
            loads.append(_load(alias, parent, fk.name))
            values[fk.name] = {"param": fk.name}
        params["quantity"] = ({"type": "integer", "minimum": 1, "maximum": limit, "description": "places to book"}, True, None)
        steps.append({"op": "validate", "param": "quantity", "type": "integer", "optional": False, "min": 1, "max": limit})
        for c in self._settable(booking):
            if c.name == "quantity":
                continue
            params[c.name] = (_param_schema(c), not c.nullable, None)
            steps.append(_validate_step(c.name, c, _ptype(c), c.nullable, **({"min": 0} if c.type in ("integer", "number") else {})))
            values[c.name] = {"param": c.name}
        steps.extend(loads)
        if resource.has("status"):
            steps.append({"op": "require", "cond": {"eq": [{"var": "resource.status"}, {"const": "open"}]},
                          "error": "ValueError", "message": f"the {resource.label} is not open for booking"})
        steps.append({"op": "require", "cond": {"ge": [{"var": f"resource.{capacity.name}"}, {"param": "quantity"}]},
                      "error": "ValueError", "message": f"not enough places left on this {resource.label}"})
        steps.append({"op": "update", "target": "resource", "table": resource.name,
                      "set": {capacity.name: {"sub": [{"var": f"resource.{capacity.name}"}, {"param": "quantity"}]}}})
        values["quantity"] = {"param": "quantity"}
        if booking.has("status"):
            values["status"] = {"const": "confirmed"}
        for c in booking.columns:
            if c.generator == "created":
                values[c.name] = {"now": True}
        steps.append({"op": "insert", "as": "booking", "table": booking.name, "pk": booking.pk, "values": values})
        return self.tool(
            f"book_{snake(resource.label)}",
            f"Book places on a {resource.label}: checks it is open and has capacity, decrements {capacity.name} "
            f"and creates a confirmed {booking.label} (at most {limit} places per booking).",
            "action", params, steps, {"var": "booking"}, _row_schema(booking), _row_fields(booking), "book")

    def cancel_booking(self, booking: TableSpec) -> ToolSpec | None:
        resource_pair = next(((fk, p) for fk, p in self.parents(booking) if p.role == "resource"), None)
        if resource_pair is None or not booking.has("status") or not booking.has("quantity"):
            return None
        rfk, resource = resource_pair
        capacity = next((c for c in resource.columns if c.generator.startswith("capacity")), None)
        if capacity is None:
            return None
        steps = [_validate_step(booking.pk, booking.column(booking.pk), "string", False), _load("booking", booking, booking.pk),
                 {"op": "require", "cond": {"in": [{"var": "booking.status"}, ["pending", "confirmed"]]},
                  "error": "ValueError", "message": f"only a pending or confirmed {booking.label} can be cancelled"},
                 {"op": "load", "as": "resource", "table": resource.name, "key": {"var": f"booking.{rfk.name}"}, "what": resource.label},
                 {"op": "update", "target": "resource", "table": resource.name,
                  "set": {capacity.name: {"add": [{"var": f"resource.{capacity.name}"}, {"var": "booking.quantity"}]}}},
                 {"op": "update", "target": "booking", "table": booking.name, "set": {"status": {"const": "cancelled"}}}]
        return self.tool(
            f"cancel_{snake(booking.label)}",
            f"Cancel a {booking.label} and give its places back to the {resource.label}.", "action",
            {booking.pk: (_param_schema(booking.column(booking.pk)), True, None)}, steps, {"var": "booking"},
            _row_schema(booking), _row_fields(booking), "cancel_booking")

    def pay(self, payment: TableSpec) -> ToolSpec | None:
        invoice_pair = next(((fk, p) for fk, p in self.parents(payment) if p.role == "invoice"), None)
        if invoice_pair is None:
            return None
        ifk, invoice = invoice_pair
        due = next((c for c in invoice.columns if c.generator.startswith("amount")), None)
        amount = payment.column("amount") if payment.has("amount") else None
        method = payment.column("method") if payment.has("method") else None
        if due is None or amount is None or not invoice.has("status"):
            return None
        exact = self.rules["exact_payment"]
        params: dict[str, tuple[dict[str, Any], bool, Any]] = {
            ifk.name: (_param_schema(ifk, f"id of the {invoice.label}"), True, None),
            "amount": ({"type": "number", "minimum": 0.01, "description": "amount to pay"}, True, None),
        }
        steps: list[dict[str, Any]] = [_validate_step(ifk.name, ifk, "string", False),
                                       {"op": "validate", "param": "amount", "type": "number", "optional": False, "min": 0.01}]
        values: dict[str, Any] = {payment.pk: {"new_id": payment.prefix}, ifk.name: {"param": ifk.name},
                                  "amount": {"param": "amount"}}
        if method is not None:
            params["method"] = (_param_schema(method), True, None)
            steps.append(_validate_step("method", method, "string", False))
            values["method"] = {"param": "method"}
        steps.append(_load("invoice", invoice, ifk.name))
        steps.append({"op": "require", "cond": {"in": [{"var": "invoice.status"}, ["issued", "partially_paid"]]},
                      "error": "ValueError", "message": f"the {invoice.label} is not open for payment"})
        if exact:
            steps.append({"op": "require", "cond": {"eq": [{"param": "amount"}, {"var": f"invoice.{due.name}"}]},
                          "error": "ValueError", "message": f"the amount must equal the {due.name.replace('_', ' ')} exactly"})
        else:
            steps.append({"op": "require", "cond": {"le": [{"param": "amount"}, {"var": f"invoice.{due.name}"}]},
                          "error": "ValueError", "message": f"the amount exceeds the {due.name.replace('_', ' ')}"})
        for c in payment.columns:
            if c.generator == "created":
                values[c.name] = {"now": True}
        for c in self._settable(payment):
            if c.name not in values and not c.nullable:
                params[c.name] = (_param_schema(c), True, None)
                steps.insert(2, _validate_step(c.name, c, _ptype(c), False))
                values[c.name] = {"param": c.name}
        steps.append({"op": "insert", "as": "payment", "table": payment.name, "pk": payment.pk, "values": values})
        steps.append({"op": "update", "target": "invoice", "table": invoice.name,
                      "set": {due.name: {"round": [{"sub": [{"var": f"invoice.{due.name}"}, {"param": "amount"}]}, 2]}}})
        steps.append({"op": "if", "when": "nothing is left to pay", "cond": {"le": [{"var": f"invoice.{due.name}"}, {"const": 0}]},
                      "then": [{"op": "update", "target": "invoice", "table": invoice.name, "set": {"status": {"const": "paid"}}}]})
        steps.append({"op": "if", "when": "a balance remains", "cond": {"gt": [{"var": f"invoice.{due.name}"}, {"const": 0}]},
                      "then": [{"op": "update", "target": "invoice", "table": invoice.name,
                                "set": {"status": {"const": "partially_paid"}}}]})
        returns = {"object": {"payment": {"var": "payment"}, "invoice_status": {"var": "invoice.status"},
                              "balance": {"var": f"invoice.{due.name}"}}}
        rule = "must equal the amount due" if exact else "may be partial, up to the amount due"
        return self.tool(
            f"pay_{snake(invoice.label)}",
            f"Record a payment against a {invoice.label} (the amount {rule}); the {invoice.label} becomes paid when nothing is left.",
            "action", params, steps, returns,
            {"type": "object", "properties": {"payment": _row_schema(payment), "invoice_status": {"type": "string"},
                                              "balance": {"type": "number"}}},
            _row_fields(payment, "payment.") + [{"name": "invoice_status", "type": "string", "path": "invoice_status"},
                                                 {"name": "balance", "type": "number", "path": "balance"}], "pay")

    def stock_tools(self, item: TableSpec) -> list[ToolSpec]:
        stock = next((c for c in item.columns if c.generator.startswith("stock")), None)
        if stock is None:
            return []
        tools = []
        base = [_validate_step(item.pk, item.column(item.pk), "string", False),
                {"op": "validate", "param": "quantity", "type": "integer", "optional": False, "min": 1}]
        qty = {"quantity": ({"type": "integer", "minimum": 1, "description": "units"}, True, None)}
        pkp = {item.pk: (_param_schema(item.column(item.pk)), True, None)}
        tools.append(self.tool(
            f"restock_{snake(item.label)}", f"Add units to the {stock.name} of a {item.label}.", "write", {**pkp, **qty},
            base + [_load("item", item, item.pk),
                    {"op": "update", "target": "item", "table": item.name,
                     "set": {stock.name: {"add": [{"var": f"item.{stock.name}"}, {"param": "quantity"}]}}}],
            {"var": "item"}, _row_schema(item), _row_fields(item), "restock"))
        tools.append(self.tool(
            f"withdraw_{snake(item.label)}_stock", f"Take units out of the {stock.name} of a {item.label}; fails when too few are left.",
            "write", {**pkp, **qty},
            base + [_load("item", item, item.pk),
                    {"op": "require", "cond": {"ge": [{"var": f"item.{stock.name}"}, {"param": "quantity"}]},
                     "error": "ValueError", "message": f"not enough {stock.name.replace('_', ' ')} left"},
                    {"op": "update", "target": "item", "table": item.name,
                     "set": {stock.name: {"sub": [{"var": f"item.{stock.name}"}, {"param": "quantity"}]}}}],
            {"var": "item"}, _row_schema(item), _row_fields(item), "withdraw"))
        return tools

    # -- computations -----------------------------------------------------------------------

    def total_for_parent(self, t: TableSpec, fk: ColumnSpec, parent: TableSpec, col: ColumnSpec, fn: str) -> ToolSpec:
        word = {"sum": "total", "avg": "average"}[fn]
        steps = [_validate_step(fk.name, fk, "string", False), _load("parent", parent, fk.name),
                 {"op": "query", "as": "rows", "table": t.name, "order_by": t.pk, "pk": t.pk,
                  "where": [{"col": fk.name, "cmp": "eq", "value": {"param": fk.name}, "skip_if_none": False}]},
                 {"op": "aggregate", "as": "result", "source": "rows", "fn": fn, "col": col.name},
                 {"op": "aggregate", "as": "n", "source": "rows", "fn": "count"}]
        return self.tool(
            f"{word}_{snake(col.name)}_for_{snake(parent.label)}",
            f"Compute the {word} {col.name.replace('_', ' ')} over the {t.name} of one {parent.label}.", "compute",
            {fk.name: (_param_schema(fk, f"id of the {parent.label}"), True, None)}, steps,
            {"object": {fk.name: {"param": fk.name}, word: {"var": "result"}, "count": {"var": "n"}}},
            {"type": "object", "properties": {fk.name: {"type": "string"}, word: {"type": "number"}, "count": {"type": "integer"}}},
            [{"name": fk.name, "type": "string", "path": fk.name}, {"name": word, "type": "number", "path": word},
             {"name": "count", "type": "integer", "path": "count"}], "aggregate")

    def count_by_status(self, t: TableSpec) -> ToolSpec:
        steps = [{"op": "query", "as": "rows", "table": t.name, "order_by": t.pk, "pk": t.pk, "where": []},
                 {"op": "count_by", "as": "counts", "source": "rows", "col": "status"},
                 {"op": "aggregate", "as": "n", "source": "rows", "fn": "count"}]
        return self.tool(
            f"count_{snake(t.name)}_by_status", f"Count {t.name} per status.", "compute", {}, steps,
            {"object": {"counts": {"var": "counts"}, "total": {"var": "n"}}},
            {"type": "object", "properties": {"counts": {"type": "object"}, "total": {"type": "integer"}}},
            [{"name": "total", "type": "integer", "path": "total"}], "count_by_status")

    def status_rate(self, t: TableSpec, fk: ColumnSpec, parent: TableSpec) -> ToolSpec:
        status = t.column("status")
        steps = [_validate_step(fk.name, fk, "string", False), _validate_step("status", status, "string", False),
                 _load("parent", parent, fk.name),
                 {"op": "query", "as": "rows", "table": t.name, "order_by": t.pk, "pk": t.pk,
                  "where": [{"col": fk.name, "cmp": "eq", "value": {"param": fk.name}, "skip_if_none": False}]},
                 {"op": "query", "as": "matching", "table": t.name, "order_by": t.pk, "pk": t.pk,
                  "where": [{"col": fk.name, "cmp": "eq", "value": {"param": fk.name}, "skip_if_none": False},
                            {"col": "status", "cmp": "eq", "value": {"param": "status"}, "skip_if_none": False}]},
                 {"op": "aggregate", "as": "n", "source": "rows", "fn": "count"},
                 {"op": "aggregate", "as": "k", "source": "matching", "fn": "count"}]
        return self.tool(
            f"{snake(t.label)}_status_rate_for_{snake(parent.label)}",
            f"Share of a {parent.label}'s {t.name} that are in a given status.", "compute",
            {fk.name: (_param_schema(fk, f"id of the {parent.label}"), True, None),
             "status": (_param_schema(status, "the status to measure"), True, None)}, steps,
            {"object": {"matching": {"var": "k"}, "total": {"var": "n"}, "rate": {"ratio": [{"var": "k"}, {"var": "n"}]}}},
            {"type": "object", "properties": {"matching": {"type": "integer"}, "total": {"type": "integer"}, "rate": {"type": "number"}}},
            [{"name": "rate", "type": "number", "path": "rate"}], "status_rate")


def _load(alias: str, table: TableSpec, param: str) -> dict[str, Any]:
    return {"op": "load", "as": alias, "table": table.name, "key": {"param": param}, "what": table.label}


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


def design_tools(draft: dict[str, Any], tables: list[TableSpec]) -> tuple[list[ToolSpec], dict[str, Any]]:
    rng = random.Random(f"tools:{draft['seed']}")
    f = _ToolFactory(tables, rng)
    essential: list[ToolSpec] = []
    optional: list[ToolSpec] = []

    def add(tool: ToolSpec | None, must: bool = False) -> None:
        if tool is not None:
            (essential if must else optional).append(tool)

    for t in tables:
        add(f.get(t), must=True)
        add(f.search(t))
        for fk, parent in f.parents(t):
            add(f.list_for_parent(t, fk, parent), must=t.role in ("booking", "payment"))
        if t.role == "booking":
            add(f.book(t), must=True)
            add(f.cancel_booking(t), must=True)
        elif t.role == "payment":
            add(f.pay(t), must=True)
        else:
            add(f.create(t), must=t.role in ("person", "record", "invoice", "resource"))
        add(f.update(t))
        if t.machine and t.role != "booking":
            for verb, sources, target in t.machine["transitions"]:
                add(f.transition(t, verb, sources, target), must=False)
        elif t.machine and t.role == "booking":
            for verb, sources, target in t.machine["transitions"]:
                add(f.transition(t, verb, sources, target))
        if t.role not in ("payment",):
            add(f.delete(t))
        for tool in f.stock_tools(t):
            add(tool, must=True)
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

    seen: set[str] = set()
    unique_essential = []
    for tool in essential:
        if tool.name not in seen:
            seen.add(tool.name)
            unique_essential.append(tool)
    unique_optional = []
    for tool in optional:
        if tool.name not in seen:
            seen.add(tool.name)
            unique_optional.append(tool)
    target = rng.randint(32, 70)
    rng.shuffle(unique_optional)
    room = max(0, target - len(unique_essential))
    chosen = unique_essential + unique_optional[:room]
    if len(chosen) > 70:
        chosen = chosen[:70]
    chosen.sort(key=lambda t: t.name)
    return chosen, f.rules


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
            state[t.name][pk] = row
    return state
