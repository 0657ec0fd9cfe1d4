"""Phase 1 for one domain: draft → schema → tools → description → policy → code → tests + repair → TDG.

Django-free: takes a backend and a sandbox configuration, returns a :class:`DomainResult` of plain
data, with a record of every stage (what it did and how long it took).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from environments import graph as tdg
from environments.runtime.codecheck import check_tool_code
from environments.runtime.executor import EnvironmentBundle, Sandbox, SandboxConfig

from .interface import Repair, SynthesisBackend, ToolStageError
from .spec import DomainSpec, StageRecord, TestCase, ToolSpec
from .testing import run_tests

ProgressFn = Callable[[str, float], None]


@dataclass
class DomainResult:
    spec: DomainSpec
    tests: list[TestCase]
    tool_status: dict[str, dict[str, Any]]
    edges: list[tdg.Edge]
    stats: dict[str, Any]
    layout: dict[str, dict[str, float]]
    stages: list[StageRecord] = field(default_factory=list)
    seconds: float = 0.0
    sandbox: dict[str, Any] = field(default_factory=dict)

    @property
    def counters(self) -> dict[str, int]:
        verified = sum(1 for s in self.tool_status.values() if s["status"] == "verified")
        return {
            "domains": 1,
            "tools_total": len(self.tool_status),
            "tools_verified": verified,
            "tools_failed": len(self.tool_status) - verified,
            "tests_total": len(self.tests),
            "tests_passed": sum(1 for t in self.tests if t.outcome in ("success", "anticipated_rejection")),
            "repairs": sum(s["repairs"] for s in self.tool_status.values()),
            "edges_total": len(self.edges),
            "edges_witnessed": sum(1 for e in self.edges if e.witnessed),
            "edges_data_flow": self.stats["edges_by_kind"]["data_flow"],
            "edges_pre_post": self.stats["edges_by_kind"]["pre_post"],
            "edges_shared_state": self.stats["edges_by_kind"]["shared_state"],
        }


class _Stages:
    def __init__(self, backend: str, progress: ProgressFn | None) -> None:
        self.backend = backend
        self.records: list[StageRecord] = []
        self.progress = progress

    def run(self, stage: str, fraction: float, fn: Callable[[], Any], summarize: Callable[[Any], str]) -> Any:
        started = time.perf_counter()
        value = fn()
        self.records.append(StageRecord(stage, self.backend, round(time.perf_counter() - started, 4), summarize(value)))
        if self.progress:
            self.progress(stage, fraction)
        return value


def _bundle(spec: DomainSpec, tools: list[ToolSpec]) -> EnvironmentBundle:
    return EnvironmentBundle(tools={t.name: {"code": t.code, "raises": t.raise_types()} for t in tools},
                             schema=spec.schema(), state=spec.fixture, clock=spec.clock, id_seed=spec.id_seed)


def _run_cases(sandbox: Sandbox, fixture: dict[str, Any], batch: list[TestCase], backend: SynthesisBackend) -> None:
    """Run cases; a backend with its own expectations (``classify_case``) judges the runs itself."""
    classify = getattr(backend, "classify_case", None)
    if classify is None:
        run_tests(sandbox, fixture, batch)
        return
    results = sandbox.run_cases([{"patch": c.patch, "tool": c.tool, "args": c.args} for c in batch])
    for case, result in zip(batch, results):
        case.attempts += 1
        case.outcome, case.message = classify(case, result)
        case.observed = {k: result.get(k) for k in ("outcome", "error_type", "error", "state_hash", "diff", "value")
                         if k in result}


def verify_tools(spec: DomainSpec, cases: dict[str, list[TestCase]], backend: SynthesisBackend,
                 config: SandboxConfig, repair_rounds: int,
                 stage_errors: dict[str, str] | None = None) -> tuple[dict[str, dict[str, Any]], Sandbox | None]:
    """Run every tool's tests; repair failing tools up to ``repair_rounds`` times; classify tools.

    Tools named in ``stage_errors`` (their code or tests could not be written) fail with that reason.
    Returns the status per tool and a live sandbox loaded with the final code (for witnessing).
    """
    status = {t.name: {"status": "pending", "reason": "", "repairs": 0} for t in spec.tools}
    for name, reason in (stage_errors or {}).items():
        status[name].update(status="failed", reason=reason)
    pending = [t for t in spec.tools if t.name not in (stage_errors or {})]
    sandbox: Sandbox | None = None
    for round_no in range(repair_rounds + 1):
        runnable: list[ToolSpec] = []
        for tool in pending:
            problems = check_tool_code(tool.code, tool.name)
            if problems:
                for case in cases[tool.name]:
                    case.attempts += 1
                    case.outcome, case.message = "unexpected_failure", "code check failed: " + "; ".join(map(str, problems[:3]))
            else:
                runnable.append(tool)
        if runnable:
            if sandbox is not None:
                sandbox.close()
            clean = [t for t in spec.tools if t.code and not check_tool_code(t.code, t.name)]
            sandbox = Sandbox(_bundle(spec, clean), config)
            batch: list[TestCase] = []
            for tool in runnable:
                error = sandbox.load_errors.get(tool.name)
                for case in cases[tool.name]:
                    if error:
                        case.attempts += 1
                        case.outcome, case.message = "unexpected_failure", f"tool code did not load: {error}"
                    else:
                        batch.append(case)
            if batch:
                _run_cases(sandbox, spec.fixture, batch, backend)
        failing: list[ToolSpec] = []
        for tool in pending:
            tool_cases = cases[tool.name]
            if not tool_cases:
                status[tool.name].update(status="failed", reason="no test case could be built from the specification")
            elif any(c.outcome == "unexpected_failure" for c in tool_cases):
                failing.append(tool)
            elif not any(c.kind == "negative" for c in tool_cases):
                status[tool.name].update(status="verified", reason="passed its positive cases; no negative case could be built")
            else:
                status[tool.name].update(status="verified", reason="")
        if not failing:
            break
        repaired: list[ToolSpec] = []
        for tool in failing:
            first = next(c for c in cases[tool.name] if c.outcome == "unexpected_failure")
            reason = f"{first.name}: {first.message}"
            if round_no == repair_rounds:
                status[tool.name].update(status="failed", reason=f"still failing after {round_no} repair round(s): {reason}")
                continue
            try:
                fix = backend.repair(spec, tool, [c for c in cases[tool.name] if c.outcome == "unexpected_failure"])
            except ToolStageError as exc:
                status[tool.name].update(status="failed", reason=f"{exc}; last failure: {reason}"[:4000])
                continue
            if isinstance(fix, Repair):
                new_code, fixed_tests = fix.code, fix.fixed_tests
            else:
                new_code, fixed_tests = fix, []
            changed = bool(new_code and new_code != tool.code)
            if changed:
                tool.code = new_code  # type: ignore[assignment]
            if changed or fixed_tests:
                status[tool.name]["repairs"] += 1
                repaired.append(tool)
            else:
                status[tool.name].update(status="failed", reason=f"the {backend.name} backend could not repair it: {reason}")
        if not repaired:
            break
        pending = repaired
    return status, sandbox


def _judged(judge: Callable[..., list[tdg.Edge]], spec: DomainSpec, verified: list[ToolSpec],
            edges: list[tdg.Edge]) -> tuple[list[tdg.Edge], str]:
    """Edges after the backend's dependency judge; the rule-based candidates stand if the judge fails."""
    try:
        judged = judge(spec, verified, edges)
    except Exception as exc:  # noqa: BLE001 - a judge failure never costs the domain its graph
        return edges, f"judge failed, {len(edges)} rule-based edges kept: {exc}"[:500]
    before = {(e.src, e.dst) for e in edges}
    after = {(e.src, e.dst) for e in judged}
    return judged, (f"{len(after & before)} confirmed, {len(before - after)} rejected, "
                    f"{len(after - before)} added")


def synthesize_domain(seed: int, backend: SynthesisBackend, config: SandboxConfig | None = None,
                      repair_rounds: int = 3, progress: ProgressFn | None = None) -> DomainResult:
    started = time.perf_counter()
    config = config or SandboxConfig.from_env()
    stages = _Stages(backend.name, progress)
    draft = stages.run("domain", 0.05, lambda: backend.draft_domain(seed), lambda d: d["name"])
    tables = stages.run("schema", 0.1, lambda: backend.design_schema(draft), lambda t: f"{len(t)} tables")
    tools, rules = stages.run("tools", 0.2, lambda: backend.design_tools(draft, tables), lambda r: f"{len(r[0])} tools")
    description = stages.run("description", 0.22, lambda: backend.describe_domain(draft, tables, tools, rules),
                             lambda d: f"{len(d.split())} words")
    spec = DomainSpec(name=draft["name"], slug=draft["slug"], description=description,
                      keywords=draft["keywords"], sector=draft["sector"], seed=seed, backend=backend.name,
                      tables=tables, tools=tools, id_seed=seed, notes=[f"business rules: {rules}"])
    spec.policy = stages.run("policy", 0.25, lambda: backend.write_policy(spec, rules),
                             lambda p: f"{len(p.split())} words, version {hashlib.sha256(p.encode()).hexdigest()[:12]}")

    stage_errors: dict[str, str] = {}  # tool -> why a per-tool stage failed (the tool fails, the domain goes on)

    def write_code() -> int:
        for tool in spec.tools:
            try:
                tool.code = backend.write_code(spec, tool)
            except ToolStageError as exc:
                tool.code, stage_errors[tool.name] = "", f"code: {exc}"[:4000]
        return len(spec.tools)

    def write_tests() -> dict[str, list[TestCase]]:
        out: dict[str, list[TestCase]] = {}
        for tool in spec.tools:
            out[tool.name] = []
            if tool.name in stage_errors:
                continue
            try:
                out[tool.name] = backend.write_tests(spec, tool)
            except ToolStageError as exc:
                stage_errors[tool.name] = f"tests: {exc}"[:4000]
        return out

    stages.run("code", 0.3, write_code, lambda n: f"code for {n} tools")
    spec.fixture = stages.run("fixture", 0.35, lambda: backend.build_fixture(spec),
                              lambda f: f"{sum(len(r) for r in f.values())} rows")
    cases = stages.run("tests", 0.5, write_tests, lambda c: f"{sum(len(v) for v in c.values())} cases")
    status, sandbox = stages.run("verify", 0.75,
                                 lambda: verify_tools(spec, cases, backend, config, repair_rounds, stage_errors),
                                 lambda r: f"{sum(1 for s in r[0].values() if s['status'] == 'verified')} verified")
    verified = [t for t in spec.tools if status[t.name]["status"] == "verified"]
    sandbox_info: dict[str, Any] = {"mode": config.mode}
    try:
        edges = stages.run("graph", 0.85, lambda: tdg.candidate_edges(verified), lambda e: f"{len(e)} edges")
        judge = getattr(backend, "judge_edges", None)
        if judge is not None and verified:
            edges = stages.run("judge", 0.88, lambda: _judged(judge, spec, verified, edges), lambda r: r[1])[0]
        positives: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for tool in verified:
            case = next((c for c in cases[tool.name] if c.kind == "positive" and c.outcome == "success"), None)
            if case is not None:
                positives[tool.name] = (case.patch, case.args)
        if sandbox is not None:
            sandbox_info.update(layers=sandbox.layers, missing=sandbox.missing_layers)
            stages.run("witness", 0.95, lambda: tdg.witness_edges(edges, sandbox, spec.fixture, positives),
                       lambda _r: f"{sum(1 for e in edges if e.witnessed)} witnessed")
    finally:
        if sandbox is not None:
            sandbox.close()
    names = [t.name for t in verified]
    stats = tdg.graph_stats(names, edges)
    positions = tdg.layout(names, edges)
    all_cases = [c for t in spec.tools for c in cases[t.name]]
    return DomainResult(spec=spec, tests=all_cases, tool_status=status, edges=edges, stats=stats, layout=positions,
                        stages=stages.records, seconds=round(time.perf_counter() - started, 3), sandbox=sandbox_info)
