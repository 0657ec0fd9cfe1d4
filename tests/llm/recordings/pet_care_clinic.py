"""Recorded answers for one small domain end to end ("Pet Care Clinic", 12 tools), written as a
strong model would answer each role, for tests/llm/fake_openai.py. Each role has its own model
name (``rec-<role>``); per-tool roles are told apart by the ``Tool: <name>`` line of the request.

Two answers are deliberately imperfect, as real models' are, so that the run exercises repair:
``cancel_appointment``'s first code forgets to give the places back (the debugger fixes the code),
and one ``update_owner_contact`` test expects the wrong phone number (the debugger fixes the test).
"""

from __future__ import annotations

import copy
from typing import Any

CLOCK = "2026-03-02T09:00:00Z"


def P(name: str, type_: str, description: str, required: bool = True, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "description": description, "required": required, **extra}


def F(name: str, type_: str, path: str | None = None) -> dict[str, str]:
    return {"name": name, "type": type_, "path": path or name}


def tool(name, kind, template, description, params, output, fields, pre, post, raises):  # noqa: ANN001, ANN201
    return {"name": name, "kind": kind, "template": template, "description": description, "parameters": params,
            "output_description": output, "output_fields": fields, "preconditions": pre, "postconditions": post,
            "raises": [{"type": t, "when": w} for t, w in raises]}


OWNER_FIELDS = [F("owner_id", "string"), F("full_name", "string"), F("email", "string"), F("phone", "string"),
                F("status", "string")]
PET_FIELDS = [F("pet_id", "string"), F("owner_id", "string"), F("name", "string"), F("species", "string")]
SLOT_FIELDS = [F("slot_id", "string"), F("vet_id", "string"), F("service", "string"), F("starts_at", "string"),
               F("places_left", "integer"), F("status", "string")]
APPOINTMENT_FIELDS = [F("appointment_id", "string"), F("slot_id", "string"), F("pet_id", "string"),
                      F("status", "string")]

TOOLS = [
    tool("find_owner_by_email", "read", "search",
         "Finds pet owners by their exact e-mail address and returns the matching owner records with a count. "
         "Use it first to identify the customer.",
         [P("email", "string", "The owner's e-mail address, e.g. maya.ortiz@example.com")],
         "{items: owners ordered by id, count}", [F("items", "array"), F("count", "integer"),
                                                   F("owner_id", "string", "items.0.owner_id")],
         ["none"], ["nothing changes"], [("ValueError", "the e-mail is empty")]),
    tool("get_owner", "read", "get", "Looks up one pet owner by id and returns name, e-mail, phone and account status.",
         [P("owner_id", "string", "The owner's id")], "the owner record", OWNER_FIELDS,
         ["the owner exists"], ["nothing changes"], [("KeyError", "no owner has this id")]),
    tool("update_owner_contact", "write", "update",
         "Changes an owner's phone number and/or full name; values left out stay as they are. It needs the owner's "
         "id and at least one new value.",
         [P("owner_id", "string", "The owner's id"), P("phone", "string", "New phone number", False),
          P("full_name", "string", "New full name", False)],
         "the updated owner record", OWNER_FIELDS,
         ["the owner exists", "at least one of phone, full_name is given"], ["the given columns hold the new values"],
         [("KeyError", "no owner has this id"), ("ValueError", "no new value is given")]),
    tool("register_pet", "write", "create",
         "Registers a new pet for an active owner with its name, species, birth date and weight.",
         [P("owner_id", "string", "The owner's id"), P("name", "string", "The pet's name"),
          P("species", "string", "The species", enum=["dog", "cat", "rabbit", "bird"]),
          P("birth_date", "date", "Birth date, YYYY-MM-DD"),
          P("weight_kg", "number", "Weight in kilograms", minimum=0.1, maximum=120)],
         "the new pet record", PET_FIELDS,
         ["the owner exists and is active"], ["a pets row exists for the owner"],
         [("KeyError", "no owner has this id"), ("ValueError", "the owner is suspended or a value is invalid")]),
    tool("list_owner_pets", "read", "list_for_parent", "Lists all the pets of one owner, ordered by id, with their count.",
         [P("owner_id", "string", "The owner's id")], "{items: pets, count}",
         [F("items", "array"), F("count", "integer"), F("pet_id", "string", "items.0.pet_id")],
         ["the owner exists"], ["nothing changes"], [("KeyError", "no owner has this id")]),
    tool("get_pet", "read", "get", "Looks up one pet by id and returns its owner, name, species, birth date and weight.",
         [P("pet_id", "string", "The pet's id")], "the pet record", PET_FIELDS,
         ["the pet exists"], ["nothing changes"], [("KeyError", "no pet has this id")]),
    tool("search_care_slots", "read", "search",
         "Searches the clinic's care slots by service, by day (YYYY-MM-DD, in UTC) and by vet; every filter is "
         "optional. Returns matching slots ordered by start time.",
         [P("service", "string", "The service", False, enum=["checkup", "vaccination", "grooming", "dental"]),
          P("starts_on", "date", "The day the slot starts, YYYY-MM-DD", False),
          P("vet_id", "string", "The vet's id", False)],
         "{items: slots, count}", [F("items", "array"), F("count", "integer"), F("slot_id", "string", "items.0.slot_id")],
         ["none"], ["nothing changes"], [("ValueError", "a filter value is invalid")]),
    tool("get_care_slot", "read", "get", "Looks up one care slot by id: vet, service, start time, places left and status.",
         [P("slot_id", "string", "The slot's id")], "the slot record", SLOT_FIELDS,
         ["the slot exists"], ["nothing changes"], [("KeyError", "no slot has this id")]),
    tool("book_care_slot", "action", "book",
         "Books a pet onto an open care slot, creating a confirmed appointment. It refuses a closed slot or one "
         "with no places left. Booking lowers the slot's places left by one.",
         [P("slot_id", "string", "The slot's id"), P("pet_id", "string", "The pet's id"),
          P("quantity", "integer", "How many places to book: always 1", minimum=1, maximum=1),
          P("notes", "string", "Anything the vet should know", False)],
         "the new appointment", APPOINTMENT_FIELDS,
         ["the slot exists and is open", "the slot has places left", "the pet exists"],
         ["a confirmed appointment exists", "the slot has one place fewer"],
         [("KeyError", "no slot or pet has this id"), ("ValueError", "the slot is closed or full")]),
    tool("cancel_appointment", "action", "cancel_booking",
         "Cancels a pending or confirmed appointment; the place goes back to its care slot.",
         [P("appointment_id", "string", "The appointment's id")], "the cancelled appointment", APPOINTMENT_FIELDS,
         ["the appointment exists and is pending or confirmed"],
         ["the appointment is cancelled", "its slot has one more place left"],
         [("KeyError", "no appointment has this id"), ("ValueError", "the appointment is already cancelled or completed")]),
    tool("list_pet_appointments", "read", "list_for_parent",
         "Lists all the appointments of one pet, ordered by id, with their count.",
         [P("pet_id", "string", "The pet's id")], "{items: appointments, count}",
         [F("items", "array"), F("count", "integer"), F("appointment_id", "string", "items.0.appointment_id")],
         ["the pet exists"], ["nothing changes"], [("KeyError", "no pet has this id")]),
    tool("close_care_slot", "write", "transition",
         "Closes an open care slot so it takes no new bookings; existing appointments stay as they are.",
         [P("slot_id", "string", "The slot's id")], "the closed slot", SLOT_FIELDS,
         ["the slot exists and is open"], ["the slot is closed"],
         [("KeyError", "no slot has this id"), ("ValueError", "the slot is not open")]),
]
RULES = ["An appointment takes exactly one place on a care slot.",
         "Only open slots with places left can be booked.",
         "Only pending or confirmed appointments can be cancelled; cancelling gives the place back.",
         "Pets can only be registered for active owners."]


def C(name, type_, policy, nullable=False, fk=None, values=None, description=""):  # noqa: ANN001, ANN201
    col = {"name": name, "type": type_, "policy": policy, "nullable": nullable, "description": description}
    if fk:
        col["fk_table"] = fk
    if values:
        col["values"] = values
    return col


TABLES = [
    {"name": "owners", "label": "owner", "pk": "owner_id", "prefix": "own", "role": "person",
     "description": "pet owners, the clinic's customers",
     "machine": {"name": "account", "states": ["active", "suspended"], "initial": "active"},
     "columns": [C("owner_id", "string", "exempt"), C("full_name", "string", "semantic"), C("email", "string", "exact"),
                 C("phone", "string", "exact"), C("status", "enum", "exact", values=["active", "suspended"])]},
    {"name": "pets", "label": "pet", "pk": "pet_id", "prefix": "pet", "role": "record", "description": "owners' pets",
     "columns": [C("pet_id", "string", "exempt"), C("owner_id", "string", "exact", fk="owners"),
                 C("name", "string", "semantic"), C("species", "enum", "exact", values=["dog", "cat", "rabbit", "bird"]),
                 C("birth_date", "date", "exact"), C("weight_kg", "number", "exact")]},
    {"name": "vets", "label": "vet", "pk": "vet_id", "prefix": "vet", "role": "provider", "description": "the clinic's vets",
     "columns": [C("vet_id", "string", "exempt"), C("full_name", "string", "semantic"),
                 C("specialty", "enum", "exact", values=["general", "dental", "surgery"])]},
    {"name": "care_slots", "label": "care slot", "pk": "slot_id", "prefix": "slt", "role": "resource",
     "description": "bookable times with a vet",
     "machine": {"name": "resource", "states": ["open", "closed"], "initial": "open"},
     "columns": [C("slot_id", "string", "exempt"), C("vet_id", "string", "exact", fk="vets"),
                 C("service", "enum", "exact", values=["checkup", "vaccination", "grooming", "dental"]),
                 C("starts_at", "datetime", "exact"), C("places_left", "integer", "exact"),
                 C("status", "enum", "exact", values=["open", "closed"])]},
    {"name": "appointments", "label": "appointment", "pk": "appointment_id", "prefix": "apt", "role": "booking",
     "description": "a pet booked on a care slot",
     "machine": {"name": "booking", "states": ["pending", "confirmed", "cancelled", "completed"], "initial": "confirmed"},
     "columns": [C("appointment_id", "string", "exempt"), C("slot_id", "string", "exact", fk="care_slots"),
                 C("pet_id", "string", "exact", fk="pets"), C("quantity", "integer", "exact"),
                 C("notes", "text", "semantic", nullable=True),
                 C("status", "enum", "exact", values=["pending", "confirmed", "cancelled", "completed"]),
                 C("created_at", "datetime", "exempt")]},
]


def subject(template, table, parent=None, filters=None, sets=None, keys=None, transition=None):  # noqa: ANN001, ANN201
    out = {"template": template, "table": table, "parent": parent, "filters": filters or {}, "sets": sets or [],
           "keys": keys or {}}
    if transition:
        out["transition"] = transition
    return out


def load(alias, table, param, what):  # noqa: ANN001, ANN201
    return {"op": "load", "as": alias, "table": table, "key": {"param": param}, "what": what}


def query(table, pk, where, order_by=None):  # noqa: ANN001, ANN201
    return {"op": "query", "as": "items", "table": table, "pk": pk, "order_by": order_by or pk,
            "where": [{"col": c, "cmp": cmp, "value": {"param": p}} for c, cmp, p in where]}


BINDINGS = [
    {"tool": "find_owner_by_email", "reads": ["owners"], "writes": [],
     "subject": subject("search", "owners", filters={"email": {"col": "email", "cmp": "eq"}}),
     "steps": [query("owners", "owner_id", [("email", "eq", "email")])]},
    {"tool": "get_owner", "reads": ["owners"], "writes": [],
     "subject": subject("get", "owners", keys={"owner_id": "owners"}), "steps": [load("row", "owners", "owner_id", "owner")]},
    {"tool": "update_owner_contact", "reads": ["owners"], "writes": ["owners"],
     "subject": subject("update", "owners", sets=["phone", "full_name"], keys={"owner_id": "owners"}),
     "steps": [{"op": "require", "cond": {"any_set": ["phone", "full_name"]}, "message": "give at least one field to update"},
               load("row", "owners", "owner_id", "owner"),
               {"op": "update", "target": "row", "table": "owners", "skip_none": True,
                "set": {"phone": {"param": "phone"}, "full_name": {"param": "full_name"}}}]},
    {"tool": "register_pet", "reads": ["owners"], "writes": ["pets"],
     "subject": subject("create", "pets", sets=["owner_id", "name", "species", "birth_date", "weight_kg"],
                        keys={"owner_id": "owners"}),
     "steps": [load("parent_owner", "owners", "owner_id", "owner"),
               {"op": "require", "cond": {"eq": [{"var": "parent_owner.status"}, {"const": "active"}]},
                "message": "the owner must be active"},
               {"op": "insert", "as": "new", "table": "pets", "pk": "pet_id",
                "values": {"pet_id": {"new_id": "pet"}, "owner_id": {"param": "owner_id"}, "name": {"param": "name"},
                           "species": {"param": "species"}, "birth_date": {"param": "birth_date"},
                           "weight_kg": {"param": "weight_kg"}}}]},
    {"tool": "list_owner_pets", "reads": ["owners", "pets"], "writes": [],
     "subject": subject("list_for_parent", "pets", parent="owners", keys={"owner_id": "owners"}),
     "steps": [load("parent", "owners", "owner_id", "owner"), query("pets", "pet_id", [("owner_id", "eq", "owner_id")])]},
    {"tool": "get_pet", "reads": ["pets"], "writes": [],
     "subject": subject("get", "pets", keys={"pet_id": "pets"}), "steps": [load("row", "pets", "pet_id", "pet")]},
    {"tool": "search_care_slots", "reads": ["care_slots"], "writes": [],
     "subject": subject("search", "care_slots", filters={"service": {"col": "service", "cmp": "eq"},
                                                        "starts_on": {"col": "starts_at", "cmp": "on_date"},
                                                        "vet_id": {"col": "vet_id", "cmp": "eq"}},
                        keys={"vet_id": "vets"}),
     "steps": [query("care_slots", "slot_id", [("service", "eq", "service"), ("starts_at", "on_date", "starts_on"),
                                               ("vet_id", "eq", "vet_id")], order_by="starts_at")]},
    {"tool": "get_care_slot", "reads": ["care_slots"], "writes": [],
     "subject": subject("get", "care_slots", keys={"slot_id": "care_slots"}),
     "steps": [load("row", "care_slots", "slot_id", "care slot")]},
    {"tool": "book_care_slot", "reads": ["care_slots", "pets"], "writes": ["appointments", "care_slots"],
     "subject": subject("book", "appointments", sets=["slot_id", "pet_id", "quantity", "notes"],
                        keys={"slot_id": "care_slots", "pet_id": "pets"}),
     "steps": [load("resource", "care_slots", "slot_id", "care slot"), load("parent_pet", "pets", "pet_id", "pet"),
               {"op": "require", "cond": {"eq": [{"var": "resource.status"}, {"const": "open"}]},
                "message": "the care slot is not open for booking"},
               {"op": "require", "cond": {"ge": [{"var": "resource.places_left"}, {"param": "quantity"}]},
                "message": "not enough places left on this care slot"},
               {"op": "update", "target": "resource", "table": "care_slots",
                "set": {"places_left": {"sub": [{"var": "resource.places_left"}, {"param": "quantity"}]}}},
               {"op": "insert", "as": "booking", "table": "appointments", "pk": "appointment_id",
                "values": {"appointment_id": {"new_id": "apt"}, "slot_id": {"param": "slot_id"},
                           "pet_id": {"param": "pet_id"}, "quantity": {"param": "quantity"},
                           "notes": {"param": "notes"}, "status": {"const": "confirmed"}, "created_at": {"now": True}}}]},
    {"tool": "cancel_appointment", "reads": ["appointments", "care_slots"], "writes": ["appointments", "care_slots"],
     "subject": subject("cancel_booking", "appointments", keys={"appointment_id": "appointments"},
                        transition={"from": ["pending", "confirmed"], "to": "cancelled"}),
     "steps": [load("booking", "appointments", "appointment_id", "appointment"),
               {"op": "require", "cond": {"in": [{"var": "booking.status"}, ["pending", "confirmed"]]},
                "message": "only a pending or confirmed appointment can be cancelled"},
               {"op": "load", "as": "resource", "table": "care_slots", "key": {"var": "booking.slot_id"}, "what": "care slot"},
               {"op": "update", "target": "resource", "table": "care_slots",
                "set": {"places_left": {"add": [{"var": "resource.places_left"}, {"var": "booking.quantity"}]}}},
               {"op": "update", "target": "booking", "table": "appointments", "set": {"status": {"const": "cancelled"}}}]},
    {"tool": "list_pet_appointments", "reads": ["pets", "appointments"], "writes": [],
     "subject": subject("list_for_parent", "appointments", parent="pets", keys={"pet_id": "pets"}),
     "steps": [load("parent", "pets", "pet_id", "pet"),
               query("appointments", "appointment_id", [("pet_id", "eq", "pet_id")])]},
    {"tool": "close_care_slot", "reads": ["care_slots"], "writes": ["care_slots"],
     "subject": subject("transition", "care_slots", keys={"slot_id": "care_slots"},
                        transition={"from": ["open"], "to": "closed"}),
     "steps": [load("row", "care_slots", "slot_id", "care slot"),
               {"op": "require", "cond": {"in": [{"var": "row.status"}, ["open"]]},
                "message": "only an open care slot can be closed"},
               {"op": "update", "target": "row", "table": "care_slots", "set": {"status": {"const": "closed"}}}]},
]

OWNERS = [{"owner_id": "own_1", "full_name": "Maya Ortiz", "email": "maya.ortiz@example.com", "phone": "+1-555-0101",
           "status": "active"},
          {"owner_id": "own_2", "full_name": "Liam Chen", "email": "liam.chen@example.com", "phone": "+1-555-0102",
           "status": "active"},
          {"owner_id": "own_3", "full_name": "Ines Moreau", "email": "ines.moreau@example.com", "phone": "+1-555-0103",
           "status": "suspended"}]
PETS = [{"pet_id": "pet_1", "owner_id": "own_1", "name": "Biscuit", "species": "dog", "birth_date": "2021-04-02",
         "weight_kg": 12.5},
        {"pet_id": "pet_2", "owner_id": "own_2", "name": "Mochi", "species": "cat", "birth_date": "2019-09-15",
         "weight_kg": 4.2}]
VETS = [{"vet_id": "vet_1", "full_name": "Dr. Ana Ruiz", "specialty": "general"},
        {"vet_id": "vet_2", "full_name": "Dr. Sam Patel", "specialty": "dental"}]
SLOTS = [{"slot_id": "slt_1", "vet_id": "vet_1", "service": "checkup", "starts_at": "2026-03-10T09:00:00Z",
          "places_left": 2, "status": "open"},
         {"slot_id": "slt_2", "vet_id": "vet_2", "service": "dental", "starts_at": "2026-03-11T14:00:00Z",
          "places_left": 1, "status": "open"},
         {"slot_id": "slt_3", "vet_id": "vet_1", "service": "vaccination", "starts_at": "2026-03-12T10:00:00Z",
          "places_left": 0, "status": "closed"}]
APPOINTMENTS = [{"appointment_id": "apt_1", "slot_id": "slt_1", "pet_id": "pet_2", "quantity": 1,
                 "notes": "annual check", "status": "confirmed", "created_at": "2026-02-20T10:00:00Z"},
                {"appointment_id": "apt_2", "slot_id": "slt_2", "pet_id": "pet_1", "quantity": 1, "notes": None,
                 "status": "cancelled", "created_at": "2026-02-21T10:00:00Z"}]
ROWS = {"owners": OWNERS, "pets": PETS, "vets": VETS, "care_slots": SLOTS, "appointments": APPOINTMENTS}

CODE = {
    "find_owner_by_email": '''
def find_owner_by_email(db, ctx, email):
    if not isinstance(email, str) or not email.strip():
        raise ValueError("email must be a non-empty string")
    wanted = email.strip().lower()
    items = [dict(row) for _, row in sorted(db["owners"].items()) if row["email"].lower() == wanted]
    return {"items": items, "count": len(items)}
''',
    "get_owner": '''
def get_owner(db, ctx, owner_id):
    owner = db["owners"].get(owner_id)
    if owner is None:
        raise KeyError(f"owner {owner_id} not found")
    return dict(owner)
''',
    "update_owner_contact": '''
def update_owner_contact(db, ctx, owner_id, phone=None, full_name=None):
    if phone is None and full_name is None:
        raise ValueError("give at least one field to update")
    owner = db["owners"].get(owner_id)
    if owner is None:
        raise KeyError(f"owner {owner_id} not found")
    for value, label in ((phone, "phone"), (full_name, "full_name")):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"{label} must be a non-empty string")
    if phone is not None:
        owner["phone"] = phone
    if full_name is not None:
        owner["full_name"] = full_name
    return dict(owner)
''',
    "register_pet": '''
import datetime


def register_pet(db, ctx, owner_id, name, species, birth_date, weight_kg):
    owner = db["owners"].get(owner_id)
    if owner is None:
        raise KeyError(f"owner {owner_id} not found")
    if owner["status"] != "active":
        raise ValueError("the owner must be active")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name must be a non-empty string")
    if species not in ("dog", "cat", "rabbit", "bird"):
        raise ValueError("species must be one of dog, cat, rabbit, bird")
    try:
        datetime.date.fromisoformat(birth_date)
    except (TypeError, ValueError):
        raise ValueError("birth_date must be a date such as 2026-03-10")
    if isinstance(weight_kg, bool) or not isinstance(weight_kg, (int, float)) or not 0.1 <= weight_kg <= 120:
        raise ValueError("weight_kg must be a number from 0.1 to 120")
    pet_id = ctx.new_id("pet")
    pet = {"pet_id": pet_id, "owner_id": owner_id, "name": name, "species": species, "birth_date": birth_date,
           "weight_kg": weight_kg}
    db["pets"][pet_id] = pet
    return dict(pet)
''',
    "list_owner_pets": '''
def list_owner_pets(db, ctx, owner_id):
    if owner_id not in db["owners"]:
        raise KeyError(f"owner {owner_id} not found")
    items = [dict(row) for _, row in sorted(db["pets"].items()) if row["owner_id"] == owner_id]
    return {"items": items, "count": len(items)}
''',
    "get_pet": '''
def get_pet(db, ctx, pet_id):
    pet = db["pets"].get(pet_id)
    if pet is None:
        raise KeyError(f"pet {pet_id} not found")
    return dict(pet)
''',
    "search_care_slots": '''
import datetime


def search_care_slots(db, ctx, service=None, starts_on=None, vet_id=None):
    if service is not None and service not in ("checkup", "vaccination", "grooming", "dental"):
        raise ValueError("service must be one of checkup, vaccination, grooming, dental")
    if starts_on is not None:
        try:
            datetime.date.fromisoformat(starts_on)
        except (TypeError, ValueError):
            raise ValueError("starts_on must be a date such as 2026-03-10")
    items = []
    for row in db["care_slots"].values():
        if service is not None and row["service"] != service:
            continue
        if starts_on is not None and row["starts_at"][:10] != starts_on:
            continue
        if vet_id is not None and row["vet_id"] != vet_id:
            continue
        items.append(dict(row))
    items.sort(key=lambda r: (r["starts_at"], r["slot_id"]))
    return {"items": items, "count": len(items)}
''',
    "get_care_slot": '''
def get_care_slot(db, ctx, slot_id):
    slot = db["care_slots"].get(slot_id)
    if slot is None:
        raise KeyError(f"care slot {slot_id} not found")
    return dict(slot)
''',
    "book_care_slot": '''
def book_care_slot(db, ctx, slot_id, pet_id, quantity, notes=None):
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity != 1:
        raise ValueError("quantity must be 1")
    slot = db["care_slots"].get(slot_id)
    if slot is None:
        raise KeyError(f"care slot {slot_id} not found")
    if pet_id not in db["pets"]:
        raise KeyError(f"pet {pet_id} not found")
    if slot["status"] != "open":
        raise ValueError("the care slot is not open for booking")
    if slot["places_left"] < quantity:
        raise ValueError("not enough places left on this care slot")
    slot["places_left"] -= quantity
    appointment_id = ctx.new_id("apt")
    appointment = {"appointment_id": appointment_id, "slot_id": slot_id, "pet_id": pet_id, "quantity": quantity,
                   "notes": notes, "status": "confirmed", "created_at": ctx.now_iso()}
    db["appointments"][appointment_id] = appointment
    return dict(appointment)
''',
    "list_pet_appointments": '''
def list_pet_appointments(db, ctx, pet_id):
    if pet_id not in db["pets"]:
        raise KeyError(f"pet {pet_id} not found")
    items = [dict(row) for _, row in sorted(db["appointments"].items()) if row["pet_id"] == pet_id]
    return {"items": items, "count": len(items)}
''',
    "close_care_slot": '''
def close_care_slot(db, ctx, slot_id):
    slot = db["care_slots"].get(slot_id)
    if slot is None:
        raise KeyError(f"care slot {slot_id} not found")
    if slot["status"] != "open":
        raise ValueError("only an open care slot can be closed")
    slot["status"] = "closed"
    return dict(slot)
''',
}
# The first answer for cancel_appointment forgets to give the place back; the debugger fixes it.
CANCEL_BUGGY = '''
def cancel_appointment(db, ctx, appointment_id):
    appointment = db["appointments"].get(appointment_id)
    if appointment is None:
        raise KeyError(f"appointment {appointment_id} not found")
    if appointment["status"] not in ("pending", "confirmed"):
        raise ValueError("only a pending or confirmed appointment can be cancelled")
    appointment["status"] = "cancelled"
    return dict(appointment)
'''
CANCEL_FIXED = '''
def cancel_appointment(db, ctx, appointment_id):
    appointment = db["appointments"].get(appointment_id)
    if appointment is None:
        raise KeyError(f"appointment {appointment_id} not found")
    if appointment["status"] not in ("pending", "confirmed"):
        raise ValueError("only a pending or confirmed appointment can be cancelled")
    slot = db["care_slots"][appointment["slot_id"]]
    slot["places_left"] += appointment["quantity"]
    appointment["status"] = "cancelled"
    return dict(appointment)
'''


def ok(**changes: Any) -> dict[str, Any]:
    returns = changes.pop("returns", None)
    out: dict[str, Any] = {"outcome": "success", "changes": {k: changes.get(k, []) for k in ("added", "changed", "removed")}}
    if returns:
        out["returns"] = returns
    return out


def err(error_type: str) -> dict[str, Any]:
    return {"outcome": "error", "error_type": error_type}


def case(name: str, kind: str, args: dict[str, Any], expect: dict[str, Any], rows: dict | None = None) -> dict[str, Any]:
    return {"name": name, "kind": kind, "args": args, "expect": expect, "rows": rows or {}}


TESTS = {
    "find_owner_by_email": [
        case("finds Maya by e-mail", "positive", {"email": "maya.ortiz@example.com"}, ok(returns={"count": 1})),
        case("empty e-mail", "negative", {"email": ""}, err("ValueError"))],
    "get_owner": [
        case("reads an owner", "positive", {"owner_id": "own_2"}, ok(returns={"full_name": "Liam Chen"})),
        case("unknown owner", "negative", {"owner_id": "own_404"}, err("KeyError"))],
    "update_owner_contact": [
        case("changes the phone", "positive", {"owner_id": "own_1", "phone": "+1-555-0199"},
             ok(changed=[{"table": "owners", "pk": "own_1", "values": {"phone": "+1-555-0911"}}])),  # wrong on purpose
        case("nothing to change", "negative", {"owner_id": "own_1"}, err("ValueError")),
        case("unknown owner", "negative", {"owner_id": "own_404", "phone": "+1-555-0100"}, err("KeyError"))],
    "register_pet": [
        case("registers a rabbit", "positive",
             {"owner_id": "own_1", "name": "Clover", "species": "rabbit", "birth_date": "2024-05-01", "weight_kg": 1.8},
             ok(added=[{"table": "pets", "values": {"owner_id": "own_1", "name": "Clover", "species": "rabbit",
                                                    "birth_date": "2024-05-01", "weight_kg": 1.8}}])),
        case("suspended owner", "negative",
             {"owner_id": "own_3", "name": "Pip", "species": "bird", "birth_date": "2023-01-01", "weight_kg": 0.2},
             err("ValueError")),
        case("unknown species", "negative",
             {"owner_id": "own_1", "name": "Rex", "species": "dragon", "birth_date": "2023-01-01", "weight_kg": 3},
             err("ValueError"))],
    "list_owner_pets": [
        case("Maya's pets", "positive", {"owner_id": "own_1"}, ok(returns={"count": 1})),
        case("unknown owner", "negative", {"owner_id": "own_404"}, err("KeyError"))],
    "get_pet": [
        case("reads a pet", "positive", {"pet_id": "pet_1"}, ok(returns={"name": "Biscuit"})),
        case("unknown pet", "negative", {"pet_id": "pet_404"}, err("KeyError"))],
    "search_care_slots": [
        case("checkups on the 10th", "positive", {"service": "checkup", "starts_on": "2026-03-10"},
             ok(returns={"count": 1})),
        case("bad day", "negative", {"starts_on": "next Tuesday"}, err("ValueError"))],
    "get_care_slot": [
        case("reads a slot", "positive", {"slot_id": "slt_2"}, ok(returns={"places_left": 1})),
        case("unknown slot", "negative", {"slot_id": "slt_404"}, err("KeyError"))],
    "book_care_slot": [
        case("books Biscuit on the checkup", "positive", {"slot_id": "slt_1", "pet_id": "pet_1", "quantity": 1},
             ok(added=[{"table": "appointments", "values": {"slot_id": "slt_1", "pet_id": "pet_1", "quantity": 1,
                                                            "status": "confirmed", "created_at": CLOCK}}],
                changed=[{"table": "care_slots", "pk": "slt_1", "values": {"places_left": 1}}])),
        case("closed slot", "negative", {"slot_id": "slt_3", "pet_id": "pet_1", "quantity": 1}, err("ValueError")),
        case("full slot", "negative", {"slot_id": "slt_9", "pet_id": "pet_1", "quantity": 1}, err("ValueError"),
             rows={"care_slots": [{"slot_id": "slt_9", "vet_id": "vet_2", "service": "dental",
                                   "starts_at": "2026-03-13T10:00:00Z", "places_left": 0, "status": "open"}]}),
        case("unknown pet", "negative", {"slot_id": "slt_1", "pet_id": "pet_404", "quantity": 1}, err("KeyError"))],
    "cancel_appointment": [
        case("cancels Mochi's checkup", "positive", {"appointment_id": "apt_1"},
             ok(changed=[{"table": "appointments", "pk": "apt_1", "values": {"status": "cancelled"}},
                         {"table": "care_slots", "pk": "slt_1", "values": {"places_left": 3}}])),
        case("already cancelled", "negative", {"appointment_id": "apt_2"}, err("ValueError")),
        case("unknown appointment", "negative", {"appointment_id": "apt_404"}, err("KeyError"))],
    "list_pet_appointments": [
        case("Mochi's appointments", "positive", {"pet_id": "pet_2"}, ok(returns={"count": 1})),
        case("unknown pet", "negative", {"pet_id": "pet_404"}, err("KeyError"))],
    "close_care_slot": [
        case("closes the dental slot", "positive", {"slot_id": "slt_2"},
             ok(changed=[{"table": "care_slots", "pk": "slt_2", "values": {"status": "closed"}}])),
        case("already closed", "negative", {"slot_id": "slt_3"}, err("ValueError"))],
}
FIXED_UPDATE_TEST = case("changes the phone", "positive", {"owner_id": "own_1", "phone": "+1-555-0199"},
                         ok(changed=[{"table": "owners", "pk": "own_1", "values": {"phone": "+1-555-0199"}}]))

POLICY = """# Pet Care Clinic agent policy

You help pet owners of the clinic manage their pets and their care appointments.

## Identify the owner
- Find the owner with `find_owner_by_email` from the e-mail address they give; never guess or accept an id
  they cannot back with their e-mail.
- An owner acts only on their own record, their own pets and their pets' appointments.

## What you may do
- Read owners, pets, care slots and appointments; change an owner's phone or name; register a pet for an
  active owner; book a pet onto an open care slot that has places left (one place per appointment);
  cancel a pending or confirmed appointment (its place goes back to the slot).
- Closing a care slot is a clinic action: do it only when the clinic asks.

## Before any change
- Say exactly what will change and get an explicit yes.
- Never state a fact the tools did not return; if a tool refuses, tell the owner why in plain words.
"""

JUDGE = {"edges": [
    {"src": "find_owner_by_email", "dst": "list_owner_pets", "verdict": "confirm",
     "reason": "the owner found by e-mail is the owner whose pets are listed"},
    {"src": "list_owner_pets", "dst": "book_care_slot", "verdict": "confirm",
     "reason": "the pet to book comes from the owner's pets"},
    {"src": "close_care_slot", "dst": "cancel_appointment", "verdict": "reject",
     "reason": "closing a slot does not enable or feed a cancellation"},
    {"src": "register_pet", "dst": "list_pet_appointments", "verdict": "add",
     "reason": "a newly registered pet's appointments can be listed with its new id"},
]}

PROPOSAL = {"domains": [{"name": "Pet Care Clinic", "slug": "pet-care-clinic",
                         "description": "A veterinary clinic where pet owners register their pets, book care slots "
                                        "with vets and cancel appointments.",
                         "keywords": ["pet care", "veterinary", "appointments"], "sector": "pet_care"}]}


def _by_tool(role: str, answers: dict[str, list[dict[str, Any]]], prefix: str) -> list[dict[str, Any]]:
    return [{"when": [f"Tool: {name}"], "answers": list(seq)} for name, seq in answers.items()]


def script(prefix: str = "rec-") -> dict[str, list[dict[str, Any]]]:
    """The FakeOpenAI script: model ``<prefix><role>`` answers that role."""
    code = {name: [{"json": {"code": CODE[name].lstrip()}}] for name in CODE}
    code["cancel_appointment"] = [{"json": {"code": CANCEL_BUGGY.lstrip()}}]
    tests = {name: [{"json": {"cases": copy.deepcopy(cases)}}] for name, cases in TESTS.items()}
    debug = {
        "cancel_appointment": [{"json": {"action": "fix_code", "code": CANCEL_FIXED.lstrip(),
                                         "diagnosis": "the code never gives the cancelled place back to its care slot"}}],
        "update_owner_contact": [{"json": {"action": "fix_test", "test": copy.deepcopy(FIXED_UPDATE_TEST),
                                           "diagnosis": "the test expected a phone number other than the one it sent"}}],
    }
    usage = {"prompt_tokens": 1200, "completion_tokens": 600}

    def with_usage(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for rule in rules:
            rule["answers"] = [{**a, **usage} if "json" in a else a for a in rule["answers"]]
        return rules

    return {
        f"{prefix}domain_proposer": with_usage([{"answers": [{"json": PROPOSAL}]}]),
        f"{prefix}tool_designer": with_usage([{"answers": [{"json": {"tools": TOOLS, "business_rules": RULES}}]}]),
        f"{prefix}database_designer": with_usage([{"answers": [{"json": {"tables": TABLES, "tools": BINDINGS,
                                                                         "rows": ROWS}}]}]),
        f"{prefix}policy_writer": with_usage([{"answers": [{"json": {"policy": POLICY}}]}]),
        f"{prefix}code_writer": with_usage(_by_tool("code_writer", code, prefix)),
        f"{prefix}test_writer": with_usage(_by_tool("test_writer", tests, prefix)),
        f"{prefix}debugger": with_usage(_by_tool("debugger", debug, prefix)),
        f"{prefix}dependency_judge": with_usage([{"answers": [{"json": JUDGE}]}]),
    }


ROLES = ("domain_proposer", "tool_designer", "database_designer", "policy_writer", "code_writer", "test_writer",
         "debugger", "dependency_judge")


def role_models(prefix: str = "rec-") -> dict[str, str]:
    return {role: f"{prefix}{role}" for role in ROLES}
