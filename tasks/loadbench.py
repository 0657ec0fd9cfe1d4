"""Load benchmark of the HTTP session API (``manage.py bench_sessions``).

It starts a real server (gunicorn with its gthread workers, or Django's threaded dev server) on the
same database as this process, then plays N sessions at once over HTTP, each an oracle episode of
a verified task. Every oracle episode is first played in process, so each answer the server gives
has a known right value: an observation that differs from it is contamination (another session's
rows, a stale state); a call the server acknowledged that is not stored, or stored out of order,
is a lost call; after the load, every session's stored steps are replayed from s0 and must reach
the final hash the server recorded.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import httpx
from django.conf import settings
from django.db import connection, transaction

from environments import batches
from environments.services import create_account, persist_domain, sandbox_config
from environments.synthesis.interface import get_backend
from environments.synthesis.pipeline import synthesize_domain

from . import selectors, services
from .instantiation import domain_bundle
from .models import Run, RunStep, Task
from .rollout.agents import AGENTS
from .rollout.episode import run_episode
from .spec import build_task_spec

ROOT = Path(__file__).resolve().parents[1]
# The benchmark starts hundreds of sessions a minute from a few accounts; the per-account start
# throttle (there against runaway clients) would refuse them. Every other limit stays as configured.
SERVER_ENV = {"SCALEENV_THROTTLE_SESSION_START": "100000/minute"}


# ---------------------------------------------------------------------------------------------
# What each session will do, and what the server must answer


@dataclass(frozen=True)
class Action:
    kind: str  # "tool" or "say"
    name: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    content: str = ""
    expected: str | None = None  # the observation, or the user's reply (None: the episode ends)


@dataclass(frozen=True)
class Play:
    task_id: int
    actions: tuple[Action, ...]
    reward: float
    final_hash: str


def oracle_plays(tasks: list[Task]) -> list[Play]:
    """Each task's oracle episode, played in process: the actions and the answers they get."""
    plays = []
    for task in tasks:
        view = selectors.domain_view(task.domain)
        spec = build_task_spec(view, task)
        with services.sandbox_pool().lease(domain_bundle(view)) as sandbox:
            episode = run_episode(spec, AGENTS["oracle"](spec), sandbox)
        actions: list[Action] = []
        messages = episode.messages[2:]  # after the system prompt and the opening
        for i, message in enumerate(messages):
            if message["role"] == "assistant" and message.get("tool_calls"):
                continue
            if message["role"] == "tool":
                call = next(c for m in reversed(messages[:i]) if m.get("tool_calls")
                            for c in m["tool_calls"] if c["id"] == message["tool_call_id"])
                actions.append(Action("tool", name=call["function"]["name"],
                                      arguments=json.loads(call["function"]["arguments"]), expected=message["content"]))
            elif message["role"] == "assistant":
                following = messages[i + 1] if i + 1 < len(messages) else None
                reply = following["content"] if following and following["role"] == "user" else None
                actions.append(Action("say", content=message["content"] or "", expected=reply))
        plays.append(Play(task.pk, tuple(actions), float(episode.reward or 0.0), episode.final_hash))
    return plays


def bench_tasks(count: int, progress: Callable[[str], None]) -> list[Task]:
    """``count`` verified tasks (spread over domains), synthesizing a domain and its tasks if the
    database has too few."""
    verified = list(Task.objects.filter(status="verified").select_related("domain").order_by("id"))
    if len(verified) < count:
        progress(f"  {len(verified)} verified tasks; synthesizing two domains and their tasks…")
        for seed in (4242, 4243):
            result = synthesize_domain(seed, get_backend("procedural"), sandbox_config())
            with transaction.atomic():
                domain = persist_domain(result, None)
            batch, _ = services.start_task_batch(domains=[domain], per_domain=max(4, count // 2), seed=seed)
            for item in batch.items.all():
                batches.run_item(item.pk, worker="bench")
        verified = list(Task.objects.filter(status="verified").select_related("domain").order_by("id"))
    # Round-robin over domains so sessions of different environments run side by side.
    by_domain: dict[int, list[Task]] = {}
    for task in verified:
        by_domain.setdefault(task.domain_id, []).append(task)
    mixed = [t for group in zip(*by_domain.values()) for t in group] if len(by_domain) > 1 else verified
    return (mixed or verified)[:count]


def bench_tokens(accounts: int) -> list[str]:
    """API tokens of ``accounts`` agent accounts made for the benchmark."""
    return [create_account(f"bench-agent-{i}", "agent", token=True)[2] or "" for i in range(accounts)]


# ---------------------------------------------------------------------------------------------
# The server


def database_url() -> str:
    """This process's database as a URL, so the server uses the same one (also a scratch or test one)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    auth = quote(s["USER"] or "") + (f":{quote(s['PASSWORD'])}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_server_groups: dict[str, int] = {}  # base URL -> process group of a server started here


def server_cpu_seconds(base_url: str) -> float | None:
    """CPU time (user + system) used so far by a server started by ``running_server`` and every
    process under it, its sandbox workers included (Linux /proc; None elsewhere or for another
    server). Processes that ended meanwhile are not counted."""
    root = _server_groups.get(base_url)
    if root is None or not Path("/proc").is_dir():
        return None
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        pid = int(entry.name)
        parents[pid], ticks[pid] = int(fields[1]), int(fields[11]) + int(fields[12])  # ppid; utime + stime
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier += children
    return sum(ticks.get(pid, 0) for pid in tree) / os.sysconf("SC_CLK_TCK")


@contextmanager
def running_server(kind: str, workers: int, threads: int, env: dict[str, str] | None = None,
                   worker_class: str = "gthread") -> Iterator[str]:
    """A server on a free loopback port until the block ends: ``gunicorn`` (``workers`` processes
    of ``threads`` threads of ``worker_class``: gthread, or sync with one thread and no keep-alive) or
    ``runserver`` (Django's threaded dev server, one process)."""
    port = free_port()
    if kind == "gunicorn":
        threads = 1 if worker_class == "sync" else threads  # gunicorn turns a threaded sync worker into gthread
        command = [sys.executable, "-m", "gunicorn", "scaleenv_site.wsgi:application", "--bind", f"127.0.0.1:{port}",
                   "--workers", str(workers), "--threads", str(threads), "--worker-class", worker_class,
                   "--log-level", "warning", "--timeout", "60", "--keep-alive", "30"]
    elif kind == "runserver":
        command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    else:
        raise ValueError(f"unknown server {kind!r}")
    environment = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "scaleenv_site.settings",
                   **(env or {})}
    log = open(Path(settings.VAR_DIR) / f"bench-{kind}.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"{kind} exited with {server.returncode}; see {log.name}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not answer /healthz within 60 s; see {log.name}")
            time.sleep(0.2)
        _server_groups[base] = server.pid
        yield base
    finally:
        _server_groups.pop(base, None)
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


# ---------------------------------------------------------------------------------------------
# The load


@dataclass
class SessionOutcome:
    play: Play
    headers: dict[str, str] = field(default_factory=dict)
    session: int | None = None
    acknowledged: list[tuple[str, str]] = field(default_factory=list)  # (kind, name or text) of each 200 answer
    latencies_ms: list[float] = field(default_factory=list)  # tool calls only
    mismatches: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    reward: float | None = None


class _Answer:
    """A response read in full: status, body bytes and its JSON."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status_code, self.body = status, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


async def _post(client: aiohttp.ClientSession, path: str, headers: dict[str, str],
                body: dict[str, Any] | None = None) -> _Answer:
    async with client.post(path, data=json.dumps(body) if body is not None else None,
                           headers={**headers, "Content-Type": "application/json"} if body is not None else headers,
                           ) as answer:
        return _Answer(answer.status, await answer.read())


_SESSION_FIRST = re.compile(rb'\{"session":\s*(\d+)\s*,')


def _started_session(task_id: int, started: _Answer, first_starts: dict[int, bytes]) -> int:
    """The id of a started session. Every start of a task must carry the same messages and tool
    schemas: the first answer of each task is parsed and checked in full, and later ones are compared
    with it byte for byte after their session id (tens of kilobytes of schemas are not parsed again
    on every start: the load generator shares the server's cores)."""
    leading = _SESSION_FIRST.match(started.body)
    if leading is not None and first_starts.get(task_id) == started.body[leading.end():]:
        return int(leading.group(1))
    answer = started.json()
    if not (isinstance(answer.get("session"), int) and answer.get("messages") and answer.get("tools")):
        raise ValueError(f"a start answered without its session, messages or tools: {started.text[:200]}")
    if task_id in first_starts:
        raise ValueError("a start answered other messages or tools than the task's first start")
    if leading is not None:
        first_starts[task_id] = started.body[leading.end():]
    return answer["session"]


async def _start(client: aiohttp.ClientSession, token: str, play: Play,
                 first_starts: dict[int, bytes]) -> SessionOutcome:
    outcome = SessionOutcome(play, headers={"Authorization": f"Token {token}"})
    try:
        started = await _post(client, "/api/sessions/", outcome.headers,
                              {"task": play.task_id, "agent_model": "bench-oracle"})
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        outcome.errors.append(f"start: {type(exc).__name__}: {exc}")
        return outcome
    if started.status_code != 201:
        outcome.errors.append(f"start {started.status_code}: {started.text[:200]}")
        return outcome
    try:
        outcome.session = _started_session(play.task_id, started, first_starts)
    except ValueError as exc:
        outcome.errors.append(f"start: {exc}")
    return outcome


async def _play(client: aiohttp.ClientSession, outcome: SessionOutcome, think_s: float) -> SessionOutcome:
    """Send the oracle's actions one after another, comparing each answer with the in-process one."""
    if outcome.session is None:
        return outcome
    session, headers = outcome.session, outcome.headers
    try:
        for action in outcome.play.actions:
            if think_s:
                await asyncio.sleep(think_s)
            if action.kind == "tool":
                began = time.perf_counter()
                answer = await _post(client, f"/api/sessions/{session}/tool-calls/", headers,
                                     {"name": action.name, "arguments": action.arguments})
                outcome.latencies_ms.append((time.perf_counter() - began) * 1000)
                if answer.status_code != 200:
                    outcome.errors.append(f"tool {action.name} {answer.status_code}: {answer.text[:200]}")
                    return outcome
                outcome.acknowledged.append(("tool_call", action.name))
                if answer.json()["content"] != action.expected:
                    outcome.mismatches.append(f"{action.name}: observation differs from the in-process episode")
                continue
            answer = await _post(client, f"/api/sessions/{session}/messages/", headers, {"content": action.content})
            if answer.status_code != 200:
                outcome.errors.append(f"message {answer.status_code}: {answer.text[:200]}")
                return outcome
            outcome.acknowledged.append(("message", action.content))
            body = answer.json()
            if body.get("user") != action.expected:
                outcome.mismatches.append("the user's reply differs from the in-process episode")
            if body.get("finished"):
                outcome.reward = body.get("reward")
                return outcome
        final = await _post(client, f"/api/sessions/{session}/finish/", headers)
        outcome.reward = final.json().get("reward") if final.status_code == 200 else None
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        outcome.errors.append(f"{type(exc).__name__}: {exc}")
    return outcome


async def _slot(client: aiohttp.ClientSession, token: str, plays: list[Play], offset: int, episodes: int,
                think_s: float, ready: list[int], gate: asyncio.Event,
                first_starts: dict[int, bytes]) -> list[SessionOutcome]:
    """One agent slot: ``episodes`` sessions one after another (the first starts before the clock)."""
    played = []
    for episode in range(episodes):
        outcome = await _start(client, token, plays[(offset + episode) % len(plays)], first_starts)
        if episode == 0:
            ready.append(offset)
            await gate.wait()
        played.append(await _play(client, outcome, think_s))
    return played


async def _load(base_url: str, tokens: list[str], plays: list[Play], sessions: int, episodes: int,
                think_ms: float) -> tuple[list[SessionOutcome], float]:
    # aiohttp's C parser keeps the load generator's own CPU small: it shares the cores with the server
    # (httpx took ~3 ms of CPU a request here, a third of the machine at full load).
    connector = aiohttp.TCPConnector(limit=sessions, limit_per_host=sessions, keepalive_timeout=30)
    async with aiohttp.ClientSession(base_url=base_url, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=120)) as client:
        gate, ready, first_starts = asyncio.Event(), [], {}
        slots = [asyncio.create_task(_slot(client, tokens[i % len(tokens)], plays, i, episodes, think_ms / 1000, ready,
                                           gate, first_starts)) for i in range(sessions)]
        # Every slot's first session is open before the clock starts; then all play at once.
        while len(ready) < sessions:
            await asyncio.sleep(0.01)
        began = time.perf_counter()
        gate.set()
        done = await asyncio.gather(*slots)
        return [o for slot in done for o in slot], time.perf_counter() - began


# ---------------------------------------------------------------------------------------------
# Checks after the load


def check(outcomes: list[SessionOutcome]) -> dict[str, Any]:
    """Lost or reordered calls, contamination, replay hashes and rewards, from the stored rows."""
    lost = reordered = replay_mismatch = not_finished = 0
    for outcome in outcomes:
        if outcome.session is None:
            continue
        stored = [(kind, tool if kind == "tool_call" else content) for kind, tool, content in RunStep.objects.filter(
            run_id=outcome.session).exclude(kind=RunStep.Kind.USER).order_by("index").values_list(
            "kind", "tool", "content")]
        lost += sum((Counter(outcome.acknowledged) - Counter(stored)).values())
        if stored != outcome.acknowledged:  # in order, and nothing stored that was not acknowledged
            reordered += 1
        run = Run.objects.select_related("task", "task__domain").get(pk=outcome.session)
        if run.is_open:
            not_finished += 1
            continue
        replay = services.replay_run(run)
        if not replay["matches"] or run.final_hash != outcome.play.final_hash:
            replay_mismatch += 1
    return {"lost_calls": lost, "reordered_sessions": reordered, "replay_mismatches": replay_mismatch,
            "unfinished_sessions": not_finished}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def run_load(base_url: str, tokens: list[str], plays: list[Play], sessions: int, episodes: int,
             think_ms: float) -> dict[str, Any]:
    """Keep ``sessions`` sessions in flight against ``base_url`` (each slot plays ``episodes`` episodes
    in turn) and check every one of them."""
    cpu_before, server_before = time.process_time(), server_cpu_seconds(base_url)
    outcomes, seconds = asyncio.run(_load(base_url, tokens, plays, sessions, episodes, think_ms))
    client_cpu, server_after = time.process_time() - cpu_before, server_cpu_seconds(base_url)
    server_cpu = None if server_before is None or server_after is None else round(server_after - server_before, 2)
    latencies = [ms for o in outcomes for ms in o.latencies_ms]
    requests = sum(len(o.acknowledged) for o in outcomes) + 2 * len(outcomes)  # with each start and finish
    rewards = [o.reward for o in outcomes]
    checked = check(outcomes)
    return {
        "sessions": sessions, "episodes": len(outcomes), "think_ms": think_ms, "seconds": round(seconds, 3),
        "tool_calls": len(latencies), "calls_per_s": round(len(latencies) / seconds, 1) if seconds else 0.0,
        "requests_per_s": round(requests / seconds, 1),
        "p50_ms": round(percentile(latencies, 0.50), 1), "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1), "client_cpu_s": round(client_cpu, 2),
        "server_cpu_s": server_cpu, "server_ms_per_request": round(1000 * server_cpu / requests, 2) if (
            server_cpu is not None and requests) else None,
        "errors": sum(len(o.errors) for o in outcomes), "first_errors": [e for o in outcomes for e in o.errors][:5],
        "contaminated_sessions": sum(1 for o in outcomes if o.mismatches),
        "rewards_one": sum(1 for r in rewards if r == 1.0), "expected_rewards_one": sum(
            1 for o in outcomes if o.play.reward == 1.0),
        **checked,
    }
