"""A client for trainers: ScaleEnv's HTTP session API as a Gymnasium environment (Django-free).

Two layers, both importable without Django (only ``httpx`` and ``gymnasium``):

* :class:`SessionClient` — thin typed calls on ``/api/sessions/`` (start, call a tool, say something
  to the simulated user, finish, read back), with token auth. A non-2xx answer raises
  :class:`SessionAPIError` (``status``, ``detail``); a 429 that carries ``Retry-After`` (a throttle)
  is retried a few times after waiting that long, while a 429 without it (too many open sessions
  for the account: ``SCALEENV_SESSION_MAX_OPEN``) is raised at once, since waiting will not help.
* :class:`ScaleEnvEnv` — a ``gymnasium.Env``: one episode is one session on one task.

Observation: the conversation so far, a list of OpenAI chat messages (``system`` = the domain's
policy, ``user`` = the simulated customer, ``assistant`` with ``tool_calls``, ``tool`` with the
observation), the same list ``GET /api/sessions/{id}/`` returns, so it can be passed as
``messages=`` to an OpenAI-compatible chat endpoint with ``tools=info["tools"]``. Each call
returns a fresh copy.

Action, one of:

* ``{"tool": name, "arguments": {...}}`` (arguments may also be a JSON string, or omitted);
* an OpenAI tool call ``{"id": ..., "type": "function", "function": {"name": ..., "arguments": "<json>"}}``
  (e.g. ``completion.choices[0].message.tool_calls[0].model_dump()``);
* ``{"message": text}`` (or a bare string): a message to the user; one containing ``###STOP###``
  ends the episode;
* ``{"finish": True}``: end the episode now and get the reward.

Reward is 0.0 on every step until the episode ends, then the session's reward (1.0 when the final
state and what was said match the task). ``terminated`` is true when the session ended by the user
(``user_stop``), the agent (``###STOP###`` or finish: ``agent_stop``); ``truncated`` is true when
the server refused the step because the session reached its step limit or expired
(``max_steps`` / ``expired``, both unrewarded), or when the env's own ``max_steps`` ran out (the
env then finishes the session to free its slot and reports 0.0). ``info["response"]`` is the
server's raw answer; at the end ``info`` also has ``termination`` and ``breakdown``.

A bad tool name or bad arguments are not exceptions: the server answers with an error observation
(a ``tool`` message starting ``Error:``), and a tool-call request the server refuses outright
(400/413: e.g. a blank name, NaN, too large) becomes such an observation too, marked
``info["refused"]`` (the server stored nothing). An action of none of the forms above raises
``gymnasium.error.InvalidAction``; ``step`` before ``reset`` or after the episode ended raises
``gymnasium.error.ResetNeeded`` (:class:`EpisodeOver`).

Example (an agent token: ``manage.py create_user trainer --role agent --token``)::

    from tasks.client import ScaleEnvEnv

    with ScaleEnvEnv("http://127.0.0.1:8000", token=TOKEN, task=1) as env:
        observation, info = env.reset()           # or env.reset(options={"task": 2})
        print(observation[-1]["content"])         # the customer's opening message
        observation, reward, terminated, truncated, info = env.step(
            {"tool": info["tools"][0]["function"]["name"], "arguments": {}})
        print(observation[-1]["content"])         # the tool's answer (or "Error: ...")
        observation, reward, terminated, truncated, info = env.step({"message": "Bye. ###STOP###"})
        print(reward, terminated, info["termination"])   # 0.0 True agent_stop

``task`` may also be a list of task ids: ``reset()`` then picks one with the env's seeded random
generator (``reset(seed=...)``). Sessions themselves are deterministic: the same task and the
same actions give the same observations and reward.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Self

import gymnasium
import httpx
from gymnasium.error import InvalidAction, ResetNeeded

__all__ = ["STOP", "ActionSpace", "ChatSpace", "EpisodeOver", "ScaleEnvEnv", "SessionAPIError", "SessionClient",
           "parse_action"]

STOP = "###STOP###"
ROLES = ("system", "user", "assistant", "tool")
TRUNCATING = ("max_steps", "expired")  # terminations that end a session from outside the task


class SessionAPIError(Exception):
    """The server refused a request (``status`` is its HTTP status) or could not be reached
    (``status`` is None). ``detail`` is the server's explanation."""

    def __init__(self, status: int | None, detail: Any, *, retry_after: float | None = None,
                 body: Any = None) -> None:
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        self.body = body
        super().__init__(f"HTTP {status}: {detail}" if status is not None else f"request failed: {detail}")


class EpisodeOver(ResetNeeded):
    """``step`` was called after the episode ended: call ``reset()``."""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _detail(response: httpx.Response) -> tuple[Any, Any]:
    try:
        body = response.json()
    except ValueError:
        return (response.text[:500] or response.reason_phrase), None
    if isinstance(body, dict) and "detail" in body:
        return body["detail"], body
    return body, body


class SessionClient:
    """The session API of a ScaleEnv server, call by call.

    ``base_url`` is the site's root (``http://127.0.0.1:8000``); ``token`` an API token of an
    account with the Agent role. ``retries`` bounds how often a throttled request (429 with
    ``Retry-After``) is sent again; a wait longer than ``max_retry_wait`` seconds is not waited
    for. ``transport`` is passed to ``httpx.Client`` (e.g. ``httpx.HTTPTransport(retries=2)``).
    """

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0, retries: int = 3,
                 max_retry_wait: float = 60.0, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        root = base_url.rstrip("/").removesuffix("/api")
        self.base_url = root
        self.retries = retries
        self.max_retry_wait = max_retry_wait
        self._sleep = sleep
        self._http = httpx.Client(base_url=root + "/api/", timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Token {token}", "Accept": "application/json"})

    # -- the calls --------------------------------------------------------------------------------

    def start(self, task: int, agent_model: str = "") -> dict[str, Any]:
        """A new session on ``task``: ``{"session", "messages", "tools"}``."""
        return self._request("POST", "sessions/", {"task": task, "agent_model": agent_model})

    def call_tool(self, session: int, name: str, arguments: Any = None) -> dict[str, Any]:
        """``{"tool_call_id", "outcome", "content", "error", "truncated"}``; arguments: an object or a
        JSON string of one."""
        body = {"name": name, "arguments": {} if arguments is None else arguments}
        return self._request("POST", f"sessions/{int(session)}/tool-calls/", body)

    def say(self, session: int, content: str) -> dict[str, Any]:
        """``{"user": reply or None, "finished"}`` (+ ``reward``, ``termination``, ``breakdown`` when
        finished)."""
        return self._request("POST", f"sessions/{int(session)}/messages/", {"content": content})

    def finish(self, session: int) -> dict[str, Any]:
        """End the session (a finished one is left as it is): ``{"reward", "termination", "breakdown"}``."""
        return self._request("POST", f"sessions/{int(session)}/finish/", {})

    def get(self, session: int) -> dict[str, Any]:
        """``{"session", "task", "termination", "reward", "step_count", "messages"}``."""
        return self._request("GET", f"sessions/{int(session)}/")

    # -- plumbing ---------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, json=body)
            except httpx.HTTPError as exc:
                raise SessionAPIError(None, f"{type(exc).__name__}: {exc}") from exc
            if response.status_code == 429:
                wait = _retry_after(response)
                if wait is not None and attempt < self.retries and wait <= self.max_retry_wait:
                    attempt += 1
                    self._sleep(wait)
                    continue
            if response.is_success:
                try:
                    return response.json()
                except ValueError as exc:
                    raise SessionAPIError(response.status_code, f"the answer is not JSON: {response.text[:200]!r}",
                                          body=response.text) from exc
            detail, parsed = _detail(response)
            raise SessionAPIError(response.status_code, detail, retry_after=_retry_after(response), body=parsed)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# Actions and spaces


def parse_action(action: Any) -> tuple[str, Any, Any]:
    """``("tool", name, arguments)``, ``("message", text, None)`` or ``("finish", None, None)``;
    raises ``gymnasium.error.InvalidAction`` for anything else."""
    if isinstance(action, str):
        return "message", action, None
    if not isinstance(action, Mapping):
        raise InvalidAction(f"an action is a dict (or a string message), not {type(action).__name__}")
    keys = set(action)
    if "message" in keys:
        if keys != {"message"} or not isinstance(action["message"], str):
            raise InvalidAction('a message action is {"message": "<text>"}')
        return "message", action["message"], None
    if "finish" in keys:
        if keys != {"finish"} or action["finish"] is not True:
            raise InvalidAction('a finish action is {"finish": True}')
        return "finish", None, None
    if "tool" in keys:
        if not keys <= {"tool", "arguments"} or not isinstance(action["tool"], str):
            raise InvalidAction('a tool action is {"tool": "<name>", "arguments": {...}}')
        return "tool", action["tool"], action.get("arguments")
    if "function" in keys:  # an OpenAI tool call
        function = action["function"]
        if (not keys <= {"id", "type", "function", "index"} or action.get("type", "function") != "function"
                or not isinstance(function, Mapping) or not isinstance(function.get("name"), str)):
            raise InvalidAction('an OpenAI tool call is {"type": "function", "function": {"name", "arguments"}}')
        return "tool", function["name"], function.get("arguments")
    raise InvalidAction('an action is {"tool": name, "arguments": {...}}, an OpenAI tool call, {"message": text} '
                        f'or {{"finish": True}}; got keys {sorted(map(str, keys))}')


SAMPLE_MESSAGES = ("Hello! How can I help you today?", "Could you tell me a bit more about that?",
                   "Let me look into that for you.", "Is there anything else I can help with?")


class ActionSpace(gymnasium.Space):
    """The actions :func:`parse_action` accepts. ``sample()`` draws a short message, or, once the
    env has started a session, a call of one of its tools with no arguments."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(None, None, seed)
        self.tool_names: list[str] = []

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def contains(self, x: Any) -> bool:
        try:
            parse_action(x)
        except InvalidAction:
            return False
        return True

    def sample(self, mask: Any = None, probability: Any = None) -> dict[str, Any]:
        if mask is not None or probability is not None:
            raise NotImplementedError("ActionSpace.sample takes no mask or probability")
        if self.tool_names and self.np_random.random() < 0.5:
            return {"tool": self.tool_names[int(self.np_random.integers(len(self.tool_names)))], "arguments": {}}
        return {"message": SAMPLE_MESSAGES[int(self.np_random.integers(len(SAMPLE_MESSAGES)))]}

    def __repr__(self) -> str:
        return "ActionSpace()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActionSpace)

    __hash__ = object.__hash__


def _is_message(m: Any) -> bool:
    if not isinstance(m, Mapping) or m.get("role") not in ROLES:
        return False
    content = m.get("content")
    if not (content is None or isinstance(content, str)):
        return False
    if m["role"] == "tool":
        return isinstance(content, str) and isinstance(m.get("tool_call_id"), str)
    calls = m.get("tool_calls")
    if calls is not None:
        return m["role"] == "assistant" and isinstance(calls, list) and all(
            isinstance(c, Mapping) and isinstance(c.get("function"), Mapping)
            and isinstance(c["function"].get("name"), str) and isinstance(c["function"].get("arguments"), str)
            for c in calls)
    return isinstance(content, str)


class ChatSpace(gymnasium.Space):
    """Conversations: lists of OpenAI chat messages (``role`` system/user/assistant/tool, ``content``
    a string — or None on an assistant message with ``tool_calls`` — and ``tool_call_id`` on tool
    messages). Not flattenable to a Box: an LLM reads it, not a network of fixed input size."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(None, None, seed)

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def contains(self, x: Any) -> bool:
        return isinstance(x, list) and all(_is_message(m) for m in x)

    def sample(self, mask: Any = None, probability: Any = None) -> list[dict[str, Any]]:
        if mask is not None or probability is not None:
            raise NotImplementedError("ChatSpace.sample takes no mask or probability")
        words = ("order", "booking", "refund", "account", "please", "help", "today", "change", "the", "my")

        def text() -> str:
            return " ".join(words[int(i)] for i in self.np_random.integers(len(words), size=6)).capitalize() + "."

        return [{"role": "system", "content": text()}, {"role": "user", "content": text()}]

    def __repr__(self) -> str:
        return "ChatSpace()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChatSpace)

    __hash__ = object.__hash__


# ---------------------------------------------------------------------------------------------
# The environment


class ScaleEnvEnv(gymnasium.Env):
    """One episode = one session on a ScaleEnv server (see the module's docstring).

    ``task``: a task id, a list of ids (``reset`` picks one with the seeded generator), or None
    (then every ``reset`` needs ``options={"task": id}``). ``max_steps``: actions per episode before
    the env truncates it (None: only the server's limit, ``SCALEENV_SESSION_MAX_STEPS``). Give
    either ``base_url`` and ``token`` or a ready ``client`` (which the env then does not close).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, base_url: str | None = None, token: str | None = None, task: int | Sequence[int] | None = None,
                 *, max_steps: int | None = None, agent_model: str = "gymnasium", timeout: float = 30.0,
                 retries: int = 3, transport: httpx.BaseTransport | None = None,
                 client: SessionClient | None = None) -> None:
        if client is None:
            if base_url is None or token is None:
                raise ValueError("ScaleEnvEnv needs base_url and token (or a SessionClient as client=)")
            client = SessionClient(base_url, token, timeout=timeout, retries=retries, transport=transport)
            self._owns_client = True
        else:
            self._owns_client = False
        self.client = client
        self.tasks = self._task_ids(task)
        self.max_steps = max_steps
        self.agent_model = agent_model
        self.observation_space = ChatSpace()
        self.action_space = ActionSpace()
        self.session: int | None = None
        self.task: int | None = None
        self.tools: list[dict[str, Any]] = []
        self._chat: list[dict[str, Any]] = []
        self._steps = 0
        self._over = True
        self._ending: str | None = None
        self._closed = False

    @staticmethod
    def _task_ids(task: Any) -> list[int]:
        if task is None:
            return []
        ids = [task] if isinstance(task, int) else list(task)
        if not ids or any(isinstance(t, bool) or not isinstance(t, int) for t in ids):
            raise ValueError(f"task must be a task id or a non-empty list of ids, not {task!r}")
        return ids

    # -- reset ------------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Finish the open session (if any) and start one: ``(conversation, info)`` with
        ``info = {"session", "task", "tools"}`` (tools: OpenAI function schemas)."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"task"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)} (known: task)")
        task = options.get("task")
        if task is None and self.tasks:
            task = self.tasks[int(self.np_random.integers(len(self.tasks)))] if len(self.tasks) > 1 else self.tasks[0]
        if task is None or isinstance(task, bool) or not isinstance(task, int):
            raise ValueError("which task? pass reset(options={'task': <id>}) or ScaleEnvEnv(..., task=<id>)")
        self._end_session()
        started = self.client.start(task, self.agent_model)
        self.session, self.task = started["session"], task
        self.tools = started["tools"]
        self.action_space.tool_names = [t["function"]["name"] for t in self.tools if "function" in t]
        self._chat = list(started["messages"])
        self._steps, self._over, self._ending = 0, False, None
        return copy.deepcopy(self._chat), {"session": self.session, "task": task, "tools": copy.deepcopy(self.tools)}

    # -- step -------------------------------------------------------------------------------------

    def step(self, action: Any) -> tuple[list[dict[str, Any]], float, bool, bool, dict[str, Any]]:
        if self.session is None:
            raise ResetNeeded("call reset() before step()")
        if self._over:
            raise EpisodeOver(f"the episode on session {self.session} is over ({self._ending}); call reset() "
                              "to start a new one")
        kind, value, arguments = parse_action(action)
        self._steps += 1
        info: dict[str, Any] = {"kind": kind, "step": self._steps}
        try:
            if kind == "tool":
                result = self._tool(value, arguments, info)
            elif kind == "message":
                result = self._say(value, info)
            else:
                result = self._end(self.client.finish(self.session), info, truncated=False)
        except SessionAPIError as exc:
            if exc.status != 409:
                raise
            result = self._closed_by_server(exc, info)
        if not self._over and self.max_steps is not None and self._steps >= self.max_steps:
            info["finish"] = self.client.finish(self.session)
            info["termination"] = "max_steps"
            result = (0.0, False, True)
            self._over, self._ending = True, "max_steps (the env's)"
        reward, terminated, truncated = result
        return copy.deepcopy(self._chat), reward, terminated, truncated, info

    def _tool(self, name: str, arguments: Any, info: dict[str, Any]) -> tuple[float, bool, bool]:
        if arguments is None:
            arguments = {}
        try:
            text = arguments if isinstance(arguments, str) else json.dumps(arguments, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidAction(f"the tool arguments are not JSON: {exc}") from exc
        try:
            response = self.client.call_tool(self.session, name, arguments)
        except SessionAPIError as exc:
            if exc.status not in (400, 413):
                raise
            # Refused before reaching the session (nothing stored): the agent still sees why.
            info["response"], info["refused"] = exc.body if exc.body is not None else {"detail": exc.detail}, True
            call_id = f"refused_{self._steps}"
            self._chat += self._call_messages(call_id, name, text, f"Error: InvalidRequest: {exc.detail}")
            return 0.0, False, False
        info["response"] = response
        self._chat += self._call_messages(response["tool_call_id"], name, text, response["content"])
        return 0.0, False, False

    @staticmethod
    def _call_messages(call_id: str, name: str, arguments: str, content: str) -> list[dict[str, Any]]:
        return [{"role": "assistant", "content": None, "tool_calls": [
                    {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]},
                {"role": "tool", "tool_call_id": call_id, "content": content}]

    def _say(self, text: str, info: dict[str, Any]) -> tuple[float, bool, bool]:
        response = self.client.say(self.session, text)
        info["response"] = response
        self._chat.append({"role": "assistant", "content": text})
        if response.get("user") is not None:
            self._chat.append({"role": "user", "content": response["user"]})
        if response.get("finished"):
            return self._end(response, info, truncated=False)
        return 0.0, False, False

    def _end(self, result: dict[str, Any], info: dict[str, Any], *, truncated: bool) -> tuple[float, bool, bool]:
        info.setdefault("response", result)
        info["termination"] = result.get("termination")
        info["breakdown"] = result.get("breakdown")
        self._over, self._ending = True, result.get("termination")
        reward = float(result.get("reward") or 0.0)
        return reward, not truncated, truncated

    def _closed_by_server(self, exc: SessionAPIError, info: dict[str, Any]) -> tuple[float, bool, bool]:
        """409: the session was ended by the server (step limit, idle expiry) or elsewhere."""
        info["response"] = exc.body if exc.body is not None else {"detail": exc.detail}
        state = self.client.get(self.session)
        truncated = state.get("termination") in TRUNCATING
        return self._end({"reward": state.get("reward"), "termination": state.get("termination"),
                          "breakdown": None}, info, truncated=truncated)

    # -- ending -----------------------------------------------------------------------------------

    def _end_session(self) -> None:
        """Finish the open session, best-effort (the server expires it anyway when idle)."""
        if self.session is not None and not self._over:
            self._over, self._ending = True, "finished by the env"
            try:
                self.client.finish(self.session)
            except SessionAPIError:
                pass

    def close(self) -> None:
        """Finish the open session (best-effort) and close the HTTP client if the env made it."""
        if self._closed:
            return
        self._end_session()
        if self._owns_client:
            self.client.close()
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if "ScaleEnv-v0" not in gymnasium.registry:
    gymnasium.register("ScaleEnv-v0", entry_point="tasks.client:ScaleEnvEnv")
