"""One client for every LLM role (Django-free): any OpenAI-compatible endpoint through the ``openai`` SDK.

What every call gets, whoever makes it:

* a **cache**: the answer is stored under a hash of the model, the messages, the tools and the
  sampling parameters; the same request again is answered from the store with no request at all;
* a **record** of every call (stage, role, model, prompt version, request, response, tokens, latency,
  cost, outcome, error) handed to a :class:`CallStore` (the Django side stores it as a row);
* **retries**: a 429 waits what ``Retry-After`` says (or backs off), 5xx, timeouts and dropped
  connections back off exponentially, up to ``max_retries``; other 4xx fail at once;
* a **concurrency limit shared by every process of the machine** (``slots`` lock files);
* for structured output, validation against a pydantic model, the validation error fed back to
  the model for a bounded number of corrections.

A failure is an :class:`LLMError` whose ``outcome`` names what happened (``rate_limited``,
``server_error``, ``timeout``, ``connection_error``, ``refused``, ``invalid_output``, ``truncated``),
so the row the caller was making records a clear reason and the rest of a batch carries on.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from environments.runtime.statekit import canonical_json

from .prompts import Prompt

Model = TypeVar("Model", bound=BaseModel)

ROLES = ("domain_proposer", "tool_designer", "database_designer", "policy_writer", "code_writer", "test_writer",
         "debugger", "dependency_judge", "chain_writer", "state_builder", "scenario_writer", "gate", "agent", "user",
         "semantic_judge")


class LLMError(Exception):
    """A call that did not give a usable answer; ``outcome`` says why (stored on the call's row)."""

    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass(frozen=True)
class LLMSettings:
    base_url: str = ""
    api_key: str = ""
    model: str = ""
    role_models: dict[str, str] = field(default_factory=dict)  # role -> model, overriding ``model``
    timeout: float = 120.0  # seconds per request
    max_retries: int = 4  # after the first attempt, for 429, 5xx, timeouts and dropped connections
    max_backoff: float = 60.0  # the longest wait between attempts (and the most of a Retry-After honoured)
    validation_retries: int = 2  # corrections asked for after an answer that breaks the schema
    concurrency: int = 4  # requests in flight on this machine, across processes
    slots_dir: str = ""  # where the lock files of the concurrency slots live ("" : no machine-wide limit)
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)  # model -> ($/1M prompt, $/1M completion)
    temperature: float = 0.0

    def model_for(self, role: str) -> str:
        return self.role_models.get(role) or self.model

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)


@dataclass
class CallRecord:
    """One call as stored: what was asked, what came back, what it cost and how it ended."""

    stage: str
    role: str
    model: str
    prompt_version: str
    cache_key: str
    request: dict[str, Any]
    response: dict[str, Any] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    cost: float = 0.0
    outcome: str = "ok"
    error: str = ""
    attempts: int = 0
    cached: bool = False
    context: dict[str, Any] = field(default_factory=dict)  # what the call was for (domain, task, tool...)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CallStore(Protocol):
    """Where calls are cached and recorded (environments/llm_store.py stores them in the database)."""

    def cached(self, cache_key: str) -> dict[str, Any] | None:
        """The stored successful response for this key, or None."""

    def record(self, call: CallRecord) -> None:
        """Store one call (a cache hit too, marked ``cached``)."""


class MemoryStore:
    """A CallStore in memory (tests and one-off scripts)."""

    def __init__(self) -> None:
        self.calls: list[CallRecord] = []
        self._answers: dict[str, dict[str, Any]] = {}

    def cached(self, cache_key: str) -> dict[str, Any] | None:
        return self._answers.get(cache_key)

    def record(self, call: CallRecord) -> None:
        self.calls.append(call)
        if call.outcome == "ok" and call.response is not None and not call.cached:
            self._answers[call.cache_key] = call.response


@dataclass(frozen=True)
class Completion:
    """The parts of an answer the roles use."""

    content: str
    tool_calls: list[dict[str, Any]]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    cached: bool

    @classmethod
    def from_response(cls, response: dict[str, Any], cached: bool) -> Completion:
        choice = (response.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        usage = response.get("usage") or {}
        calls = [{"id": c.get("id", ""), "name": (c.get("function") or {}).get("name", ""),
                  "arguments": (c.get("function") or {}).get("arguments", "")} for c in message.get("tool_calls") or []]
        return cls(content=message.get("content") or "", tool_calls=calls,
                   finish_reason=choice.get("finish_reason") or "", prompt_tokens=int(usage.get("prompt_tokens") or 0),
                   completion_tokens=int(usage.get("completion_tokens") or 0), cached=cached)


def cache_key(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json({"model": model, "messages": messages, "params": params}).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# The machine-wide concurrency limit


@contextmanager
def _slot(directory: str, slots: int, give_up_after: float) -> Iterator[None]:
    """Hold one of ``slots`` lock files in ``directory`` (shared by every process of the machine)."""
    if not directory or slots <= 0:
        yield
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + give_up_after
    while True:
        for index in range(slots):
            handle = open(os.path.join(directory, f"slot-{index}.lock"), "a+")  # noqa: SIM115 - held below
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        if time.monotonic() > deadline:
            raise LLMError("busy", f"no free LLM slot of {slots} in {give_up_after:.0f} s")
        time.sleep(0.05 + random.random() * 0.05)


# ---------------------------------------------------------------------------------------------
# The client


class LLMClient:
    def __init__(self, settings: LLMSettings, store: CallStore | None = None,
                 sleep: Callable[[float], None] = time.sleep, context: dict[str, Any] | None = None) -> None:
        if not settings.configured:
            raise LLMError("not_configured", "no LLM endpoint: set SCALEENV_LLM_BASE_URL and SCALEENV_LLM_MODEL")
        import openai

        self.settings = settings
        self.store = store or MemoryStore()
        self.sleep = sleep
        self.context = dict(context or {})
        self.sample: int | None = None  # sent as ``seed`` and part of the cache key (see with_sample)
        # The SDK's own retries are off: ours record every attempt and honour Retry-After.
        self._sdk = openai.OpenAI(base_url=settings.base_url, api_key=settings.api_key or "not-needed",
                                  timeout=settings.timeout, max_retries=0)

    def with_context(self, **context: Any) -> LLMClient:
        """The same client, recording ``context`` (e.g. domain=..., task=...) on its calls."""
        clone = object.__new__(LLMClient)
        clone.__dict__.update(self.__dict__)
        clone.context = {**self.context, **context}
        return clone

    def with_sample(self, sample: int) -> LLMClient:
        """The same client asking for sample ``sample`` (sent as ``seed``, and part of the cache key):
        trial k of an episode is its own cache entry, so k trials are k samples, not one answer
        served k times, and re-running trial k is still served from the cache."""
        clone = self.with_context()
        clone.sample = sample
        return clone

    # -- one request, cached, retried, recorded ----------------------------------------------

    def complete(self, *, role: str, stage: str, messages: list[dict[str, Any]], prompt_version: str = "",
                 tools: list[dict[str, Any]] | None = None, json_output: bool = False,
                 max_tokens: int | None = None, temperature: float | None = None) -> Completion:
        model = self.settings.model_for(role)
        params: dict[str, Any] = {"temperature": self.settings.temperature if temperature is None else temperature}
        if tools:
            params["tools"] = tools
        if json_output:
            params["response_format"] = {"type": "json_object"}
        if max_tokens:
            params["max_tokens"] = max_tokens
        if self.sample is not None:
            params["seed"] = self.sample
        key = cache_key(model, messages, params)
        record = CallRecord(stage=stage, role=role, model=model, prompt_version=prompt_version, cache_key=key,
                            request={"messages": messages, **params}, context=dict(self.context))
        hit = self.store.cached(key)
        if hit is not None:
            completion = Completion.from_response(hit, cached=True)
            record.response, record.cached = hit, True
            record.prompt_tokens, record.completion_tokens = completion.prompt_tokens, completion.completion_tokens
            self.store.record(record)
            return completion
        started = time.perf_counter()
        try:
            response = self._request(model, messages, params, record)
        except LLMError as exc:
            record.outcome, record.error = exc.outcome, str(exc)[:4000]
            record.latency_ms = (time.perf_counter() - started) * 1000
            self.store.record(record)
            raise
        record.latency_ms = (time.perf_counter() - started) * 1000
        completion = Completion.from_response(response, cached=False)
        record.response = response
        record.prompt_tokens, record.completion_tokens = completion.prompt_tokens, completion.completion_tokens
        record.cost = self._cost(model, completion.prompt_tokens, completion.completion_tokens)
        if completion.finish_reason == "length":
            record.outcome, record.error = "truncated", "the answer was cut at the token limit"
            self.store.record(record)
            raise LLMError("truncated", f"{role}: the answer was cut at the token limit (finish_reason=length)")
        self.store.record(record)
        return completion

    def _request(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any],
                 record: CallRecord) -> dict[str, Any]:
        import openai

        last = ""
        for attempt in range(self.settings.max_retries + 1):
            record.attempts = attempt + 1
            try:
                with _slot(self.settings.slots_dir, self.settings.concurrency, give_up_after=self.settings.timeout * 4):
                    answer = self._sdk.chat.completions.create(model=model, messages=messages, **params)
                return answer.model_dump(mode="json")
            except openai.RateLimitError as exc:
                outcome, last, wait = "rate_limited", f"429 from the endpoint: {_detail(exc)}", _retry_after(exc)
            except openai.InternalServerError as exc:
                outcome, last, wait = "server_error", f"{exc.status_code} from the endpoint: {_detail(exc)}", None
            except openai.APITimeoutError:
                outcome, last, wait = "timeout", f"no answer within {self.settings.timeout:g} s", None
            except openai.APIConnectionError as exc:
                outcome, last, wait = "connection_error", f"could not reach {self.settings.base_url}: {exc}", None
            except openai.APIStatusError as exc:  # other 4xx: asking again will not help
                raise LLMError("refused", f"{exc.status_code} from the endpoint: {_detail(exc)}") from exc
            except (openai.APIResponseValidationError, ValueError) as exc:  # ValueError: a body that is not JSON
                raise LLMError("invalid_output", f"the endpoint's answer is not a chat completion: {exc}") from exc
            if attempt == self.settings.max_retries:
                break
            backoff = min(self.settings.max_backoff, (2 ** attempt) + random.random())
            self.sleep(min(self.settings.max_backoff, wait) if wait is not None else backoff)
        raise LLMError(outcome, f"{last} (after {self.settings.max_retries + 1} attempts)")

    def _cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        prompt_price, completion_price = self.settings.prices.get(model, (0.0, 0.0))
        return round((prompt_tokens * prompt_price + completion_tokens * completion_price) / 1_000_000, 6)

    # -- structured output ---------------------------------------------------------------

    def structured(self, *, role: str, stage: str, prompt: Prompt, variables: dict[str, Any],
                   schema: type[Model], max_tokens: int | None = None) -> Model:
        """Ask for a JSON object matching ``schema``; an answer that is not JSON or breaks the schema
        is sent back with the error, up to ``validation_retries`` times."""
        messages = prompt.messages(variables, schema=schema)
        for correction in range(self.settings.validation_retries + 1):
            completion = self.complete(role=role, stage=stage, messages=messages, prompt_version=prompt.version,
                                       json_output=True, max_tokens=max_tokens)
            try:
                return schema.model_validate_json(_json_text(completion.content))
            except (ValidationError, ValueError) as exc:
                problem = _explain(exc)
            if correction == self.settings.validation_retries:
                break
            messages = messages + [
                {"role": "assistant", "content": completion.content},
                {"role": "user", "content": "That answer cannot be used: " + problem +
                                            "\nAnswer again with one JSON object that follows the schema exactly."}]
        self.store.record(CallRecord(stage=stage, role=role, model=self.settings.model_for(role),
                                     prompt_version=prompt.version, cache_key="", request={"messages": messages[-2:]},
                                     outcome="invalid_output", error=problem[:4000], context=dict(self.context)))
        raise LLMError("invalid_output", f"{role}: no valid answer after {self.settings.validation_retries + 1} "
                                         f"tries; last problem: {problem[:600]}")


def _json_text(content: str) -> str:
    """The JSON object in an answer (models sometimes wrap it in a ```json fence)."""
    text = content.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text.strip()


def _explain(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'the object'}: {e['msg']}"
                         for e in exc.errors()[:8])
    return f"it is not valid JSON ({exc})"


def _detail(exc: Any) -> str:
    try:
        body = exc.response.json()
        return str((body.get("error") or {}).get("message") or body)[:300]
    except Exception:  # noqa: BLE001 - any body at all
        return str(getattr(exc, "message", exc))[:300]


def _retry_after(exc: Any) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


def settings_from(values: dict[str, Any]) -> LLMSettings:
    """Settings from plain values (scaleenv_site.settings builds them from the environment)."""
    prices = {m: (float(p[0]), float(p[1])) for m, p in (values.get("prices") or {}).items()}
    return LLMSettings(base_url=values.get("base_url", ""), api_key=values.get("api_key", ""),
                       model=values.get("model", ""), role_models=dict(values.get("role_models") or {}),
                       timeout=float(values.get("timeout", 120)), max_retries=int(values.get("max_retries", 4)),
                       max_backoff=float(values.get("max_backoff", 60)),
                       validation_retries=int(values.get("validation_retries", 2)),
                       concurrency=int(values.get("concurrency", 4)), slots_dir=values.get("slots_dir", ""),
                       prices=prices, temperature=float(values.get("temperature", 0.0)))


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True)
