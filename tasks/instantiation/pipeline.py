"""Phase 2: task instantiation by graph expansion (paper §4.2), procedural backend.

intent → the customer, their records and near misses added to the fixture (s0), and the careful
agent's gold chain C1 (checked in the sandbox: it must run, and change the state exactly when the
task is a write) → orthogonal distractors (kept only when C1 reads and writes exactly the same with
them) → the τ²-shaped user scenario and the scripted user's script, grounded in C1 and s0 → s_gt
by execution → BFS expansion of the task subgraph H with execution and patching → the gate adding
chains from unused tools, with a floor on |H|. Every decision is recorded on the draft.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from environments.runtime import statekit
from environments.runtime.executor import EnvironmentBundle, Sandbox

from tasks import phrasing

from .catalog import Catalog, Rows
from .intents import CLOSINGS, GREETINGS, PERSONAS, Context, Intent, NotApplicable, article, customer_word, library
from .plan import Answer, Plan, Script, render_instructions
from .view import DomainView, ToolView

COMPLEXITY = {  # orthogonal distractor rows per touched table; near misses per goal; share of two-goal tasks
    "easy": {"distractors": 1, "near": 1, "two_goals": 0.0},
    "medium": {"distractors": 3, "near": 2, "two_goals": 0.0},
    "hard": {"distractors": 6, "near": 3, "two_goals": 0.85},  # what makes it hard is what it asks, not only rows
}
KIND_SHARES = {"write": 0.50, "question": 0.32, "refusal": 0.18}  # the mix of task kinds a batch aims at
LITERAL_TYPES = ("integer", "number", "boolean")


@dataclass
class GateSettings:
    tau: float = 0.5
    k: int = 16  # candidate chains sampled to estimate g(D)
    floor: int = 20
    max_chains: int = 8
    lam: float = 0.5
    saturation: float = 50.0


@dataclass
class TaskDraft:
    domain: str
    seed: int
    complexity: str
    intent: str
    kind: str  # write | question | refusal
    instruction: str  # the user scenario rendered as one text (what an LLM user simulator reads)
    user_scenario: dict[str, Any]  # τ²-bench's persona + instructions
    user_profile: dict[str, Any]  # who the customer is: {"table", "pk", "name", "email"}
    script: dict[str, Any]  # the scripted user's script (tasks.instantiation.plan.Script)
    s0: dict[str, Any]
    gold_chain: list[dict[str, Any]]  # arguments may hold references ($ref, $pick, ...)
    gold_calls: list[dict[str, Any]]  # the same calls with the literal arguments they ran with
    gold_outputs: list[Any]
    s_gt: dict[str, Any]
    communicate_info: list[dict[str, Any]]  # answers: {kind, value, label, source}
    evaluation: dict[str, Any]  # refusal, targets, near miss, collateral probe, purpose, rows added
    distractors: list[dict[str, str]]
    subgraph: list[str]
    subgraph_edges: int
    c_h: float
    policy_version: str = ""
    gate: list[dict[str, Any]] = field(default_factory=list)
    patches: list[dict[str, Any]] = field(default_factory=list)
    expansion: list[dict[str, Any]] = field(default_factory=list)
    content_hash: str = ""

    @property
    def h_size(self) -> int:
        return len(self.subgraph)


class InstantiationError(Exception):
    """No valid task could be built for this seed (recorded on the job's item)."""


def domain_bundle(view: DomainView) -> EnvironmentBundle:
    return EnvironmentBundle(tools=view.bundle_tools(), schema=view.schema, state=view.fixture, clock=view.clock,
                             id_seed=view.id_seed)


def _is_literal_param(schema: dict[str, Any], name: str) -> bool:
    return schema.get("type") in LITERAL_TYPES or "enum" in schema or schema.get("format") == "date" or not name.endswith("_id")


def sample_chain(view: DomainView, rng: random.Random, length: int, allowed: set[str] | None = None,
                 want_write: bool | None = None) -> list[dict[str, Any]] | None:
    """A walk of ``length`` tools along data-flow edges (the gate's candidate chains among unused
    tools); arguments of later steps reference earlier outputs wherever an edge provides them."""
    usable = [t for t in view.tools.values() if t.positive is not None and (allowed is None or t.name in allowed)]
    if not usable:
        return None
    by_src: dict[str, list] = {}
    for e in view.edges:
        if "data_flow" in e.kinds and (allowed is None or e.dst in allowed) and view.tools[e.dst].positive:
            by_src.setdefault(e.src, []).append(e)
    starts = [t for t in usable if t.name in by_src]
    if not starts:
        return None
    tool = rng.choice(sorted(starts, key=lambda t: t.name))
    chain = [{"tool": tool.name, "args": dict(tool.positive[1])}]
    used = {tool.name}
    for index in range(1, length):
        options = [e for e in by_src.get(chain[-1]["tool"], []) if e.dst not in used]
        if not options:
            break
        if want_write and index == length - 1:
            writers = [e for e in options if view.tools[e.dst].mutates]
            options = writers or options
        witnessed = [e for e in options if e.witnessed]
        edge = rng.choice(sorted(witnessed or options, key=lambda e: e.dst))
        nxt = view.tools[edge.dst]
        args = dict(nxt.positive[1])
        for ev in edge.evidence.get("data_flow", []):
            args[ev["param"]] = {"$ref": [index - 1, ev["field"]]}
        chain.append({"tool": nxt.name, "args": args})
        used.add(nxt.name)
    if len(chain) < 2:
        return None
    if want_write and not any(view.tools[s["tool"]].mutates for s in chain):
        return None
    if want_write is False and any(view.tools[s["tool"]].mutates for s in chain):
        return None
    return chain


def run_chain(sandbox: Sandbox, chain: list[dict[str, Any]], state: dict[str, Any]) -> dict[str, Any] | None:
    run = sandbox.run_sequence(chain, state=state, return_state=True)
    if any(r["outcome"] != "success" for r in run["results"]):
        return None
    return run


def _distractors(view: DomainView, s0: dict[str, Any], tables: list[str], per_table: int,
                 rng: random.Random, avoid: set[tuple[str, str]] | None = None) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Schema-valid extra rows: each column drawn from another row of the same table, never from the
    rows in ``avoid`` (the task's own: a distractor must not carry the customer's name or company)."""
    state = statekit.copy_state(s0)
    added: list[dict[str, str]] = []
    for table in tables:
        rows = [row for pk, row in state.get(table, {}).items() if (table, pk) not in (avoid or set())]
        info = view.tables.get(table, {})
        if not rows or not info:
            continue
        pk_col = info["pk"]
        for _ in range(per_table):
            for _attempt in range(3):  # a drawn row may repeat a unique value (an e-mail): draw again
                row = {col: rng.choice(rows).get(col) for col in rows[0]}
                pk = f"{str(row[pk_col]).split('_')[0]}_dx{rng.getrandbits(28):07x}"
                row[pk_col] = pk
                state[table][pk] = row
                if not statekit.validate_rows(view.schema, state):
                    added.append({"table": table, "pk": pk, "why": "orthogonal distractor"})
                    break
                del state[table][pk]
    return state, added


def _edges_within(graph: nx.DiGraph, nodes: set[str]) -> int:
    return graph.subgraph(nodes).number_of_edges()


def complexity_score(graph: nx.DiGraph, nodes: set[str], settings: GateSettings) -> float:
    return (len(nodes) + settings.lam * _edges_within(graph, nodes)) / settings.saturation


def gate_score(unused: int, c_h: float, g_d: float) -> float:
    """The procedural gate: keep adding chains while unused tools are feasible and H is simple.

    p = g(D) · (1 − min(c(H), 1)) · min(1, |D| / 5)
    """
    return round(g_d * (1 - min(c_h, 1.0)) * min(1.0, unused / 5), 4)


def swap_values(value: Any, swaps: list[list[Any]]) -> Any:
    """``value`` with every value in ``swaps`` replaced, whole lists included (the gold chain
    acting on the near miss)."""
    for old, new in swaps:
        if value == old and type(value) is type(old):
            return new
    if isinstance(value, dict):
        return {k: swap_values(v, swaps) for k, v in value.items()}
    if isinstance(value, list):
        return [swap_values(v, swaps) for v in value]
    return value


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _lower(text: str) -> str:
    return text if text[:2] == "I " or text[:2] == "I'" else text[:1].lower() + text[1:]


def _other_value(schema: dict[str, Any], current: Any) -> Any:
    """A schema-valid value different from ``current`` (for the collateral probe)."""
    if "enum" in schema:
        others = [v for v in schema["enum"] if v != current]
        return others[0] if others else None
    if schema.get("type") == "integer":
        low = int(schema.get("minimum", 0))
        high = int(schema.get("maximum", low + 10))
        return low if current != low else min(high, low + 1)
    if schema.get("type") == "number":
        return round(float(current or 0) + 7.5, 2)
    if schema.get("type") == "boolean":
        return not bool(current)
    if schema.get("format") == "date":
        return "2026-06-15" if current != "2026-06-15" else "2026-06-16"
    if schema.get("format") == "date-time":
        return "2026-06-15T10:00:00Z" if current != "2026-06-15T10:00:00Z" else "2026-06-16T10:00:00Z"
    if schema.get("type") == "string":
        return f"{current} (edited)" if current else "Edited by the agent"
    return None


class Instantiator:
    def __init__(self, view: DomainView, sandbox: Sandbox, settings: GateSettings | None = None) -> None:
        self.view = view
        self.sandbox = sandbox
        self.settings = settings or GateSettings()
        self.graph = view.graph()
        self.catalog = Catalog(view)
        self.intents = library(self.catalog)

    # -- the intent, s0 and the gold chain ---------------------------------------------------

    def _kinds(self, rng: random.Random) -> list[str]:
        """Kinds to try, the drawn one first (by the batch's target mix)."""
        available = [k for k in KIND_SHARES if any(i.kind == k for i in self.intents)]
        if not available:
            raise InstantiationError("this domain supports no intent (no customer table, or no way to find "
                                     "customers by e-mail)")
        weights = [KIND_SHARES[k] for k in available]
        first = rng.choices(available, weights)[0]
        return [first] + [k for k in available if k != first]

    def _plan(self, rng: random.Random, complexity: str) -> tuple[Plan, dict[str, Any], dict[str, Any]]:
        errors: list[str] = []
        for kind in self._kinds(rng):
            # Goal families first (cancel, book, pay, ask…), then the family's shapes: a domain with
            # three booking tables does not get three times as many booking tasks.
            families: dict[str, list[Intent]] = {}
            for i in self.intents:
                if i.kind == kind:
                    families.setdefault(i.name.split(":")[0], []).append(i)
            order = sorted(families)
            rng.shuffle(order)
            options = []
            for family in order:
                shapes = list(families[family])
                rng.shuffle(shapes)
                options.extend(shapes[:2])
            for intent in options[:6]:
                built = self._try(intent, rng, complexity, errors)
                if built is not None:
                    return built
        raise InstantiationError("no intent could be built: " + "; ".join(errors[-4:]))

    def _try(self, intent: Intent, rng: random.Random, complexity: str,
             errors: list[str]) -> tuple[Plan, dict[str, Any], dict[str, Any]] | None:
        state = statekit.copy_state(self.view.fixture)
        rows = Rows(self.catalog, state, rng)
        ctx = Context(self.catalog, rows, rng, complexity, near_misses=COMPLEXITY[complexity]["near"])
        try:
            results = [(intent, intent.build(ctx))]
            if intent.kind != "refusal" and rng.random() < COMPLEXITY[complexity]["two_goals"]:
                others = [i for i in self.intents if i.kind != "refusal" and i.name.split(":")[0] != intent.name.split(":")[0]
                          and not _answer_changed_by(intent, i)]
                rng.shuffle(others)
                for other in others[:3]:
                    snapshot = (statekit.copy_state(state), list(ctx.chain.steps), list(ctx.facts), list(ctx.targets),
                                list(rows.added))
                    try:
                        results.append((other, other.build(ctx)))
                        break
                    except (NotApplicable, LookupError, KeyError):
                        state.clear()
                        state.update(snapshot[0])
                        ctx.chain.steps[:], ctx.facts[:], ctx.targets[:], rows.added[:] = snapshot[1:]
        except (NotApplicable, LookupError, KeyError) as exc:
            errors.append(f"{intent.name}: {exc}")
            return None
        problems = rows.validate()
        if problems:
            errors.append(f"{intent.name}: s0 is not valid ({problems[0]})")
            return None
        plan = self._assemble(ctx, results, rng)
        run = run_chain(self.sandbox, plan.gold, state)
        if run is None:
            errors.append(f"{intent.name}: the gold chain does not run on s0")
            return None
        changed = statekit.state_hash(run["state"]) != statekit.state_hash(state)
        if changed != (plan.kind == "write"):
            errors.append(f"{intent.name}: the gold chain {'changes' if changed else 'does not change'} the state")
            return None
        outputs = [r.get("value") for r in run["results"]]
        for answer in plan.script.answers:
            # The answer is what the gold run reads (after any change the task makes before it).
            try:
                answer.value = statekit.resolve_refs(answer.source, outputs)
            except KeyError as exc:
                errors.append(f"{intent.name}: the answer cannot be read from the gold outputs ({exc})")
                return None
            if answer.value is None or len(phrasing.humanize(answer.value)) < 2:
                errors.append(f"{intent.name}: the answer {answer.value!r} is too short to be checked as said")
                return None
        return plan, state, run

    def _assemble(self, ctx: Context, results: list[tuple[Intent, dict[str, Any]]], rng: random.Random) -> Plan:
        parts = [r for _i, r in results]
        kinds = {r["kind"] for r in parts}
        kind = "refusal" if "refusal" in kinds else "write" if "write" in kinds else "question"
        motive_first, motive_second = parts[0].get("motive", ("", ""))
        greeting = rng.choice(GREETINGS)
        first = parts[0]["ask"]
        asks = [_lower(first) if greeting.endswith(",") else first] + [f"Also, {_lower(p['ask'])}" for p in parts[1:]]
        opening = f"{greeting} {' '.join(asks)}"
        if motive_first and len(parts) == 1 and rng.random() < 0.6:
            opening += f" {_capital(motive_first)}."
        goal = " ".join(p["restate"] for p in parts)
        writes = [g for p in parts for g in p.get("goals", [p["goal"]] if "goal" in p else [])]
        answers: list[Answer] = [p["answer"] for p in parts if "answer" in p]
        refusal = next((p["refusal"] for p in parts if p.get("refusal")), None)
        person = ctx.person
        name = ctx.caller()
        whats = " and ".join(p["what"] for p in parts)
        reason = f"You want to {parts[0]['what']}" + (f" because {motive_second}" if motive_second else "") + "".join(
            f"; you also want to {p['what']}" for p in parts[1:]) + "."
        instructions = ["Give one piece of information at a time, and only when the agent asks for it.",
                        "You do not know any internal ids or reference numbers; never make one up."]
        if writes and kind != "refusal":
            instructions.append("When the agent describes a change and asks you to confirm, say yes only if it is "
                                "exactly what you asked for; otherwise say no and explain which one you mean.")
        if kind == "refusal":
            instructions.append("If the agent says it cannot do it, ask once whether there is really no way, then "
                                "accept the answer and end the conversation.")
        if answers:
            instructions.append("Once the agent has told you what you asked, thank them and end the conversation.")
        tone = rng.choice(PERSONAS)
        script = Script(kind=kind, opening=opening, goal=goal, facts=ctx.facts, unknowns=ctx.unknowns, writes=writes,
                        answers=answers, refusal=refusal, insist_once=True, seed=rng.getrandbits(32),
                        closing=CLOSINGS[tone])
        who = customer_word(person)
        persona = f"{name}, {article(who)} {who} of {self.view.name}; {tone}."
        purpose = (f"{kind.capitalize()} task ({', '.join(i.name.split(':')[0].replace('_', ' ') for i, _r in results)}): "
                   f"the customer wants to {whats.replace('your ', 'their ')}.")
        swaps = [s for p in parts for s in (p.get("swap") or [])]
        return Plan(intent="+".join(i.name for i, _r in results), kind=kind,
                    user={"table": person.name, "pk": ctx.user_row[person.pk]}, gold=list(ctx.chain.steps),
                    script=script, persona=persona, reason_for_call=reason, task_instructions=instructions,
                    purpose=purpose, targets=list(ctx.targets), near_miss={"swap": swaps} if swaps else None,
                    collateral=self._collateral(ctx, ctx.chain.steps), rows_added=list(ctx.rows.added))

    def _collateral(self, ctx: Context, gold: list[dict[str, Any]]) -> dict[str, Any] | None:
        """An edit nobody asked for (the collateral probe): one column of the customer's row, or
        else of another existing row, that the gold chain does not set, changed to a valid value."""
        touched = {(s["tool"], p) for s in gold for p in s["args"]}
        tools = self.view.tools_for("update", ctx.person.name) + [
            t for t in self.view.tools.values() if t.template == "update" and t.table != ctx.person.name]
        for tool in tools:
            table = self.catalog.tables.get(tool.table or "")
            if table is None:
                continue
            key = self.catalog.key_param(tool, table.name)
            rows = [ctx.user_row] if table.name == ctx.person.name else sorted(
                ctx.rows.state.get(table.name, {}).values(), key=lambda r: str(r[table.pk]))[:3]
            for row in rows:
                for param, schema in tool.parameters["properties"].items():
                    if param == key or (tool.name, param) in touched or param not in table.columns:
                        continue
                    value = _other_value(schema, row.get(param))
                    if value is not None and value != row.get(param):
                        return {"tool": tool.name, "args": {key: row[table.pk], param: value}}
        return None

    def build(self, seed: int, complexity: str = "medium") -> TaskDraft:
        if complexity not in COMPLEXITY:
            raise ValueError(f"complexity must be one of {', '.join(COMPLEXITY)}")
        rng = random.Random(f"task:{self.view.slug}:{seed}")
        plan, s0, run = self._plan(rng, complexity)
        plan, run = self.choose_chain(plan, s0, run)
        chain = plan.gold
        outputs = [r.get("value") for r in run["results"]]
        gold_diff = statekit.diff_states(s0, run["state"])
        touched = sorted({t for s in chain for t in self.view.tools[s["tool"]].reads + self.view.tools[s["tool"]].writes})
        distractors: list[dict[str, str]] = []
        # Table by table: keep a table's distractors only if the gold chain reads and writes
        # exactly the same with them (they are functionally orthogonal to the goal).
        own_rows = {(r["table"], r["pk"]) for r in plan.rows_added}

        def unchanged(candidate: dict[str, Any]) -> dict[str, Any] | None:
            again = run_chain(self.sandbox, chain, candidate)
            if again is not None and [r.get("value") for r in again["results"]] == outputs and \
                    statekit.diff_states(candidate, again["state"]) == gold_diff:
                return again
            return None

        for table in touched:
            candidate, added = _distractors(self.view, s0, [table], COMPLEXITY[complexity]["distractors"], rng,
                                            own_rows)
            if not added:
                continue
            again = unchanged(candidate)
            if again is not None:
                s0, run = candidate, again
                distractors.extend(added)
                continue
            # One of them changes what the gold chain sees (another bill of this customer): keep the
            # others, one at a time, so a hard task still gets its share.
            for row in added:
                one = statekit.copy_state(s0)
                one[row["table"]][row["pk"]] = candidate[row["table"]][row["pk"]]
                again = unchanged(one)
                if again is not None:
                    s0, run = one, again
                    distractors.append(row)
        s0, run, added = self.more_distractors(plan, s0, run, outputs, gold_diff)
        distractors.extend(added)
        outputs = [r.get("value") for r in run["results"]]
        calls = [{"tool": s["tool"], "args": r.get("args", s["args"])} for s, r in zip(chain, run["results"])]
        scenario = plan.user_scenario(self.view.name)
        person = self.catalog.person
        user_row = s0[person.name][plan.user["pk"]]
        profile = {**plan.user, "name": user_row.get(self.catalog.name_column(person)),
                   "email": user_row.get(self.catalog.email_column(person))}
        evaluation = {"purpose": plan.purpose, "refusal": plan.script.refusal.__dict__ if plan.script.refusal else None,
                      "targets": [t.__dict__ for t in plan.targets], "near_miss": plan.near_miss,
                      "collateral": plan.collateral, "rows_added": plan.rows_added,
                      "reward_basis": ["DB"] + (["COMMUNICATE"] if plan.script.answers else [])
                      + (["REFUSAL"] if plan.kind == "refusal" else [])}
        draft = TaskDraft(domain=self.view.slug, seed=seed, complexity=complexity, intent=plan.intent, kind=plan.kind,
                          instruction=render_instructions(scenario), user_scenario=scenario, user_profile=profile,
                          script=plan.script.as_dict(), s0=s0, gold_chain=chain, gold_calls=calls, gold_outputs=outputs,
                          s_gt=run["state"], communicate_info=[a.__dict__ for a in plan.script.answers],
                          evaluation=evaluation, distractors=distractors, subgraph=[], subgraph_edges=0, c_h=0.0,
                          policy_version=self.view.policy_version)
        self.write_scenario(draft)
        self._expand(draft, rng)
        draft.evaluation["figures"] = task_figures(self.view, draft)
        draft.content_hash = hashlib.sha256(statekit.canonical_json(
            {"chain": draft.gold_chain, "s0": draft.s0, "script": draft.script}).encode()).hexdigest()
        return draft

    # -- stages another backend may replace (tasks/instantiation/llm.py) ---------------------

    def choose_chain(self, plan: Plan, s0: dict[str, Any], run: dict[str, Any]) -> tuple[Plan, dict[str, Any]]:
        """The gold chain C1 and its run on s0 (procedural: the planner's own)."""
        return plan, run

    def more_distractors(self, plan: Plan, s0: dict[str, Any], run: dict[str, Any], outputs: list[Any],
                         gold_diff: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, str]]]:
        """Further distractor rows beyond the orthogonal ones (procedural: none)."""
        return s0, run, []

    def write_scenario(self, draft: TaskDraft) -> None:
        """Replace the draft's user scenario (procedural: the planner's, kept as it is)."""

    def gate_p(self, unused: int, c_h: float, g_d: float, record: dict[str, Any]) -> float:
        """The gate's compatibility score p for one more chain (procedural: the closed form)."""
        return gate_score(unused, c_h, g_d)

    # -- expansion --------------------------------------------------------------------------

    def _admissible(self, tool: ToolView, h: set[str]) -> dict[str, tuple[str, str]] | None:
        """Producers in H for every required id parameter of ``tool``, or None (a dead end)."""
        producers: dict[str, tuple[str, str]] = {}
        for param in tool.required:
            schema = tool.parameters["properties"].get(param, {})
            source = next(((u, ev["field"]) for u in sorted(h) for ev in self.view.data_flow(u, tool.name)
                           if ev["param"] == param), None)
            if source:
                producers[param] = source
            elif not _is_literal_param(schema, param):
                return None
        return producers

    def _try_tool(self, draft: TaskDraft, tool: ToolView, producers: dict[str, tuple[str, str]],
                  outputs: dict[str, Any]) -> bool:
        args = dict(tool.positive[1])
        for param, (src, path) in producers.items():
            try:
                args[param] = statekit.resolve_path(outputs[src], path)
            except KeyError:
                pass
        result = self.sandbox.run_sequence([{"tool": tool.name, "args": args}], state=draft.s0)["results"][0]
        if result["outcome"] == "success":
            outputs[tool.name] = result.get("value")
            draft.expansion.append({"tool": tool.name, "args": args, "outcome": "success"})
            return True
        # Patch: add the rows its own passing test needed (only additions), then re-check C1.
        patch = tool.positive[0]
        only_adds = patch and all(not d["removed"] and not d["changed"] for d in patch.values())
        if only_adds:
            patched = statekit.apply_diff(draft.s0, patch)
            replay = run_chain(self.sandbox, draft.gold_chain, patched)
            unchanged = replay is not None and statekit.diff_states(patched, replay["state"]) == \
                statekit.diff_states(draft.s0, draft.s_gt)
            retry = self.sandbox.run_sequence([{"tool": tool.name, "args": tool.positive[1]}], state=patched)["results"][0]
            if unchanged and retry["outcome"] == "success":
                draft.s0, draft.s_gt = patched, replay["state"]
                outputs[tool.name] = retry.get("value")
                draft.patches.append({"tool": tool.name, "rows_added": {t: sorted(d["added"]) for t, d in patch.items()}})
                draft.expansion.append({"tool": tool.name, "args": tool.positive[1], "outcome": "success after patch"})
                return True
        draft.expansion.append({"tool": tool.name, "args": args, "outcome": result["outcome"],
                                "error": f"{result.get('error_type')}: {result.get('error')}"[:200]})
        return False

    def _bfs(self, draft: TaskDraft, h: set[str], start: list[str], outputs: dict[str, Any]) -> None:
        queue = deque(s for n in start for s in sorted(self.graph.successors(n)) if s not in h)
        tried: set[str] = set()
        while queue:
            name = queue.popleft()
            if name in h or name in tried:
                continue
            tried.add(name)
            tool = self.view.tools[name]
            if tool.positive is None:
                continue
            producers = self._admissible(tool, h)
            if producers is None:
                continue
            if self._try_tool(draft, tool, producers, outputs):
                h.add(name)
                queue.extend(s for s in sorted(self.graph.successors(name)) if s not in h)

    def _expand(self, draft: TaskDraft, rng: random.Random) -> None:
        settings = self.settings
        h = {s["tool"] for s in draft.gold_chain}
        outputs = {s["tool"]: o for s, o in zip(draft.gold_chain, draft.gold_outputs)}
        self._bfs(draft, h, sorted(h), outputs)
        component = nx.node_connected_component(self.graph.to_undirected(), draft.gold_chain[0]["tool"])
        floor = min(settings.floor, len(component))
        for n in range(settings.max_chains):
            unused = sorted(t for t in component if t not in h)
            c_h = complexity_score(self.graph, h, settings)
            if not unused:
                draft.gate.append({"n": n, "unused": 0, "c_h": round(c_h, 4), "decision": "stop", "reason": "no unused tools"})
                break
            allowed = set(unused)
            candidates = []
            for _ in range(settings.k):
                chain = sample_chain(self.view, rng, rng.randint(2, 3), allowed=allowed)
                if chain is not None and run_chain(self.sandbox, chain, draft.s0) is not None:
                    candidates.append(chain)
                elif chain is None:
                    single = [t for t in unused if self.view.tools[t].positive]
                    if single:
                        name = rng.choice(single)
                        one = [{"tool": name, "args": dict(self.view.tools[name].positive[1])}]
                        if run_chain(self.sandbox, one, draft.s0) is not None:
                            candidates.append(one)
            g_d = len(candidates) / settings.k
            record = {"n": n, "unused": len(unused), "c_h": round(c_h, 4), "g_d": round(g_d, 4),
                      "tau": settings.tau, "h_size": len(h)}
            p = record["p"] = self.gate_p(len(unused), c_h, g_d, record)
            if candidates and p >= settings.tau:
                record.update(decision="expand", reason=f"p={p} ≥ τ={settings.tau}")
            elif candidates and len(h) < floor:
                record.update(decision="floor", reason=f"|H|={len(h)} < floor {floor}: adding an auxiliary chain")
            else:
                record.update(decision="stop", reason="gate below τ and the floor is met" if candidates
                              else "no executable chain among the unused tools")
                draft.gate.append(record)
                break
            chain = candidates[0]
            new = [s["tool"] for s in chain if s["tool"] not in h]
            for step in chain:
                if step["tool"] not in h:
                    tool = self.view.tools[step["tool"]]
                    if self._try_tool(draft, tool, {}, outputs):
                        h.add(step["tool"])
            self._bfs(draft, h, new, outputs)
            record["chain"] = [s["tool"] for s in chain]
            record["h_after"] = len(h)
            draft.gate.append(record)
        draft.subgraph = sorted(h)
        draft.subgraph_edges = _edges_within(self.graph, h)
        draft.c_h = round(complexity_score(self.graph, h, settings), 4)


def _answer_changed_by(first: Intent, second: Intent) -> bool:
    """A question and a change on the same table ("how much do I owe in total?" and "pay my bill"):
    the answer read before the change would be stale when it is said after it, so they are not
    asked in one call."""
    tables = {i.name.partition(":")[2] for i in (first, second)}
    return {first.kind, second.kind} == {"question", "write"} and len(tables) == 1 and "" not in tables


def task_figures(view: DomainView, draft: TaskDraft) -> dict[str, Any]:
    """Per-task figures a batch summary adds up (tasks-that-teach.md §4)."""
    catalog = Catalog(view)
    person = catalog.person
    user_pk = draft.user_profile.get("pk")
    found_ids = any(statekit.is_reference(v) for s in draft.gold_chain for v in s["args"].values())
    owned, changed = 0, 0
    diff = statekit.diff_states(draft.s0, draft.s_gt)
    for table, change in diff.items():
        rows = {**{pk: row for pk, row in change.get("added", {}).items()},
                **{pk: draft.s_gt[table][pk] for pk in change.get("changed", {})}}
        for pk, row in rows.items():
            changed += 1
            owned += _linked_to(catalog, draft.s_gt, table, row, user_pk, depth=3)
    return {"needs_found_id": found_ids, "rows_changed": changed, "rows_changed_owned": owned,
            "writes_own": (owned == changed) if changed else None, "person": person.name if person else None}


def _linked_to(catalog: Catalog, state: dict[str, Any], table: str, row: dict[str, Any], user_pk: Any,
               depth: int, reverse: bool = True) -> bool:
    """Whether a row is the customer's, or points (through foreign keys) at a row of theirs, or is
    pointed at by a row of theirs (the resource a booking of theirs holds: a place given back or taken)."""
    t = catalog.tables.get(table)
    if t is None or depth < 0:
        return False
    if catalog.person and table == catalog.person.name:
        return row.get(t.pk) == user_pk
    for fk, target in t.fks().items():
        parent = (state.get(target) or {}).get(row.get(fk))
        if parent is not None and _linked_to(catalog, state, target, parent, user_pk, depth - 1, reverse=False):
            return True
    if not reverse:
        return False
    for other_name, other in catalog.tables.items():
        for fk, target in other.fks().items():
            if target == table and other_name != table and any(
                    r.get(fk) == row.get(t.pk) and _linked_to(catalog, state, other_name, r, user_pk, depth - 1, False)
                    for r in (state.get(other_name) or {}).values()):
                return True
    return False
