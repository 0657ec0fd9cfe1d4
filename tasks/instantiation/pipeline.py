"""Phase 2: task instantiation by graph expansion (paper §4.2), procedural backend.

seed chain C1 (a walk along data-flow edges, later arguments as references) → s0 that runs it
(checked in the sandbox) → distractors (checked not to change what C1 does) → profile and
instruction → s_gt by execution → BFS expansion of the task subgraph H with execution and
patching → the gate adding chains from unused tools, with a floor on |H|. Every decision is
recorded on the draft.
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

from .instruction import literal_values, profile_from_state, write_instruction
from .view import DomainView, ToolView

COMPLEXITY = {  # chain length range, distractor rows per touched table
    "easy": {"length": (2, 3), "distractors": 1},
    "medium": {"length": (3, 4), "distractors": 3},
    "hard": {"length": (4, 6), "distractors": 6},
}
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
    instruction: str
    user_profile: dict[str, Any]
    s0: dict[str, Any]
    gold_chain: list[dict[str, Any]]  # arguments may be {"$ref": [step, path]}
    gold_calls: list[dict[str, Any]]  # the same calls with the literal arguments they ran with
    gold_outputs: list[Any]
    s_gt: dict[str, Any]
    communicate_info: list[str]
    distractors: list[dict[str, str]]
    subgraph: list[str]
    subgraph_edges: int
    c_h: float
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
    """A walk of ``length`` tools along data-flow edges; arguments of later steps reference
    earlier outputs wherever an edge provides them."""
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
        # Prefer witnessed edges: running A then B with A's output is known to work.
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


def _chain_patch(view: DomainView, chain: list[dict[str, Any]]) -> dict[str, Any]:
    state = view.fixture
    for step in chain:
        patch = view.tools[step["tool"]].positive[0]
        if patch:
            state = statekit.apply_diff(state, patch)
    return statekit.diff_states(view.fixture, state)


def run_chain(sandbox: Sandbox, chain: list[dict[str, Any]], state: dict[str, Any]) -> dict[str, Any] | None:
    run = sandbox.run_sequence(chain, state=state, return_state=True)
    if any(r["outcome"] != "success" for r in run["results"]):
        return None
    return run


def _distractors(view: DomainView, s0: dict[str, Any], tables: list[str], per_table: int,
                 rng: random.Random) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Schema-valid extra rows: each column drawn from another row of the same table."""
    state = statekit.copy_state(s0)
    added: list[dict[str, str]] = []
    for table in tables:
        rows = list(state.get(table, {}).values())
        info = view.tables.get(table, {})
        if not rows or not info:
            continue
        pk_col = info["pk"]
        for _ in range(per_table):
            row = {col: rng.choice(rows).get(col) for col in rows[0]}
            pk = f"{str(row[pk_col]).split('_')[0]}_dx{rng.getrandbits(28):07x}"
            row[pk_col] = pk
            state[table][pk] = row
            added.append({"table": table, "pk": pk})
    if statekit.validate_rows(view.schema, state):
        return s0, []
    return state, added


def _communicate(view: DomainView, chain: list[dict[str, Any]], outputs: list[Any]) -> list[str]:
    """Values the agent must tell the user: scalar fields of the last read output."""
    for step, out in zip(reversed(chain), reversed(outputs)):
        if view.tools[step["tool"]].mutates or not isinstance(out, dict):
            continue
        values = []
        for key in ("total", "average", "rate", "count", "balance", "status"):
            if key in out and isinstance(out[key], (int, float, str)) and not isinstance(out[key], bool):
                values.append(str(out[key]))
        if not values:
            for key, value in out.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and not key.endswith("_id"):
                    values.append(str(value))
                    break
        if values:
            return values[:2]
    return []


def _edges_within(graph: nx.DiGraph, nodes: set[str]) -> int:
    return graph.subgraph(nodes).number_of_edges()


def complexity_score(graph: nx.DiGraph, nodes: set[str], settings: GateSettings) -> float:
    return (len(nodes) + settings.lam * _edges_within(graph, nodes)) / settings.saturation


def gate_score(unused: int, c_h: float, g_d: float) -> float:
    """The procedural gate: keep adding chains while unused tools are feasible and H is simple.

    p = g(D) · (1 − min(c(H), 1)) · min(1, |D| / 5)
    """
    return round(g_d * (1 - min(c_h, 1.0)) * min(1.0, unused / 5), 4)


class Instantiator:
    def __init__(self, view: DomainView, sandbox: Sandbox, settings: GateSettings | None = None) -> None:
        self.view = view
        self.sandbox = sandbox
        self.settings = settings or GateSettings()
        self.graph = view.graph()

    # -- seed chain, s0, s_gt ---------------------------------------------------------------

    def _seed_chain(self, rng: random.Random, complexity: str, read_only: bool) -> tuple[list, dict, dict]:
        lo, hi = COMPLEXITY[complexity]["length"]
        for _attempt in range(40):
            chain = sample_chain(self.view, rng, rng.randint(lo, hi), want_write=not read_only)
            if chain is None:
                continue
            s0 = statekit.apply_diff(self.view.fixture, _chain_patch(self.view, chain))
            run = run_chain(self.sandbox, chain, s0)
            if run is None:
                continue
            if not read_only and statekit.state_hash(run["state"]) == statekit.state_hash(s0):
                continue  # writes that cancel out (create, then delete): doing nothing would pass
            if read_only and not _communicate(self.view, chain, [r.get("value") for r in run["results"]]):
                continue  # a read-only task needs something to tell the user
            return chain, s0, run
        raise InstantiationError("no seed chain of this length runs on any state built for it")

    def build(self, seed: int, complexity: str = "medium") -> TaskDraft:
        if complexity not in COMPLEXITY:
            raise ValueError(f"complexity must be one of {', '.join(COMPLEXITY)}")
        rng = random.Random(f"task:{self.view.slug}:{seed}")
        read_only = rng.random() < 0.2
        try:
            chain, s0, run = self._seed_chain(rng, complexity, read_only)
        except InstantiationError:
            chain, s0, run = self._seed_chain(rng, complexity, not read_only)
        outputs = [r.get("value") for r in run["results"]]
        calls = [{"tool": s["tool"], "args": r.get("args", s["args"])} for s, r in zip(chain, run["results"])]
        touched = sorted({t for s in chain for t in self.view.tools[s["tool"]].reads + self.view.tools[s["tool"]].writes})
        gold_diff = statekit.diff_states(s0, run["state"])
        distractors: list[dict[str, str]] = []
        # Table by table: keep a table's distractors only if the gold chain reads and writes
        # exactly the same with them (they are functionally orthogonal to the goal).
        for table in touched:
            candidate, added = _distractors(self.view, s0, [table], COMPLEXITY[complexity]["distractors"], rng)
            if not added:
                continue
            again = run_chain(self.sandbox, chain, candidate)
            if again is not None and [r.get("value") for r in again["results"]] == outputs and \
                    statekit.diff_states(candidate, again["state"]) == gold_diff:
                s0, run = candidate, again
                distractors.extend(added)
        s_gt = run["state"]
        communicate = _communicate(self.view, chain, outputs) if not any(
            self.view.tools[s["tool"]].mutates for s in chain) else []
        profile = profile_from_state(self.view, s0, rng)
        instruction = write_instruction(self.view, chain, communicate, rng)
        profile["known_info"] = literal_values(chain)
        draft = TaskDraft(domain=self.view.slug, seed=seed, complexity=complexity, instruction=instruction,
                          user_profile=profile, s0=s0, gold_chain=chain, gold_calls=calls, gold_outputs=outputs,
                          s_gt=s_gt, communicate_info=communicate, distractors=distractors, subgraph=[],
                          subgraph_edges=0, c_h=0.0)
        self._expand(draft, rng)
        draft.content_hash = hashlib.sha256(statekit.canonical_json(
            {"chain": draft.gold_chain, "s0": draft.s0}).encode()).hexdigest()
        return draft

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
            p = gate_score(len(unused), c_h, g_d)
            record = {"n": n, "unused": len(unused), "c_h": round(c_h, 4), "g_d": round(g_d, 4), "p": p,
                      "tau": settings.tau, "h_size": len(h)}
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
