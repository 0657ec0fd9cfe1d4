"""Offline instructions and user profiles, grounded in the gold chain and s0 (templates, varied).

Every literal argument of the gold chain is stated in the instruction; arguments taken from an
earlier step's output are described, not stated (the agent obtains them through a tool).
"""

from __future__ import annotations

import random
from typing import Any

from .view import DomainView, ToolView

OPENERS = ("Hi,", "Hello!", "Good morning.", "Hey there,", "Hi there.", "Hello, I need some help.")
CONNECTORS = ("Then", "After that,", "Next,", "Once that is done,", "And then")
CLOSERS = ("Thanks!", "Thank you.", "That's all, thanks.", "Appreciate it.", "")
ASK_TELL = ("Please tell me", "Can you let me know", "I'd like to know", "Tell me")


def _is_ref(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"$ref"}


def _value(param: str, value: Any, rng: random.Random) -> str:
    if _is_ref(value):
        return rng.choice(("the one from the previous step", "the one you just found", "that same one"))
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def _pairs(tool: ToolView, args: dict[str, Any], rng: random.Random, skip: tuple[str, ...] = ()) -> str:
    parts = [f"{p.replace('_', ' ')} {_value(p, v, rng)}" for p, v in args.items() if p not in skip]
    return ", ".join(parts) if parts else "no particular details"


def describe_step(tool: ToolView, args: dict[str, Any], rng: random.Random) -> str:
    what = tool.what()
    key = next((p for p in args if p.endswith("_id")), None)
    if key and _is_ref(args[key]):
        ident = rng.choice((f"that same {what}", f"the {what} from the previous step"))
    elif key:
        ident = f"{what} {_value(key, args[key], rng)}"
    else:
        ident = f"the {what}"
    t = tool.template
    if t == "get":
        return rng.choice((f"look up {ident}", f"pull up the details of {ident}", f"check {ident}"))
    if t == "search":
        filters = _pairs(tool, args, rng, skip=("limit",))
        noun = tool.name.removeprefix("search_").replace("_", " ")
        return rng.choice((f"find the {noun} with {filters}", f"search for {noun} matching {filters}"))
    if t == "list_for_parent":
        noun = tool.name.removeprefix("list_").split("_for_")[0].replace("_", " ")
        return rng.choice((f"go through the {noun} of {ident}", f"list the {noun} for {ident}"))
    if t == "create":
        label = tool.name.removeprefix("create_").replace("_", " ")
        return rng.choice((f"create a new {label} with {_pairs(tool, args, rng)}",
                           f"add a {label}: {_pairs(tool, args, rng)}"))
    if t == "update":
        changes = _pairs(tool, args, rng, skip=(key,) if key else ())
        return rng.choice((f"update {ident}: {changes}", f"change {ident} so that it has {changes}"))
    if t == "transition":
        verb = tool.name.split("_", 1)[0]
        return rng.choice((f"{verb} {ident}", f"go ahead and {verb} {ident}"))
    if t == "delete":
        return rng.choice((f"delete {ident}", f"remove {ident}"))
    if t == "book":
        others = _pairs(tool, args, rng)
        return rng.choice((f"make a booking with {others}", f"book it: {others}"))
    if t == "cancel_booking":
        return rng.choice((f"cancel {ident}", f"call off {ident}"))
    if t == "pay":
        return rng.choice((f"pay {_value('amount', args.get('amount'), rng)} towards {ident}"
                           + (f" by {args['method']}" if "method" in args and not _is_ref(args["method"]) else ""),
                           f"settle {_value('amount', args.get('amount'), rng)} on {ident}"
                           + (f" using {args['method']}" if "method" in args and not _is_ref(args["method"]) else "")))
    if t == "restock":
        return f"add {_value('quantity', args.get('quantity'), rng)} units to {ident}"
    if t == "withdraw":
        return f"take {_value('quantity', args.get('quantity'), rng)} units out of {ident}"
    if t in ("aggregate", "status_rate", "count_by_status"):
        label = tool.name.replace("_", " ")
        return rng.choice((f"work out the {label} ({_pairs(tool, args, rng)})", f"compute {label} for {_pairs(tool, args, rng)}"))
    return f"use {tool.name} with {_pairs(tool, args, rng)}"


def profile_from_state(view: DomainView, s0: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    for name, info in view.tables.items():
        if info.get("role") == "person" and s0.get(name):
            row = s0[name][sorted(s0[name])[0]]
            person_name = row.get("full_name") or row.get("company_name") or row.get("name") or row.get("owner_name")
            if person_name:
                return {"name": person_name, "email": row.get("email") or row.get("contact_email"),
                        "city": row.get("city"), "customer_id": row.get(info["pk"]),
                        "persona": f"{person_name}, a {info['label']} of {view.name}"}
    return {"name": "Alex Morgan", "email": "alex.morgan@example.com", "city": None, "customer_id": None,
            "persona": f"Alex Morgan, a customer of {view.name}"}


def write_instruction(view: DomainView, chain: list[dict[str, Any]], communicate: list[str],
                      rng: random.Random) -> str:
    parts = []
    for i, step in enumerate(chain):
        sentence = describe_step(view.tools[step["tool"]], step["args"], rng)
        if i == 0:
            parts.append(f"{rng.choice(OPENERS)} Please {sentence}.")
        else:
            parts.append(f"{rng.choice(CONNECTORS)} {sentence}.")
    if communicate:
        parts.append(f"{rng.choice(ASK_TELL)} what you find.")
    closer = rng.choice(CLOSERS)
    if closer:
        parts.append(closer)
    return " ".join(parts)


def literal_values(chain: list[dict[str, Any]]) -> list[str]:
    """Every literal argument value of the chain (what the user must be able to say)."""
    values = []
    for step in chain:
        for v in step["args"].values():
            if not _is_ref(v):
                values.append(_value("", v, random.Random(0)))
    return values
