"""The LLM client against a real OpenAI-compatible HTTP server (tests/llm/fake_openai.py): caching,
records, retries with Retry-After, timeouts, truncation, schema corrections, the machine-wide limit."""

from __future__ import annotations

import threading
import time

import pytest
from pydantic import BaseModel

from environments.llm import LLMClient, LLMError, LLMSettings, MemoryStore, Prompt
from tests.llm.fake_openai import FakeOpenAI

ASK = [{"role": "user", "content": "Say hello."}]
PROMPT = Prompt(name="sum", role="gate", version="sum@v1+test", system="You add numbers.",
                user="Add {{a}} and {{b}}.")


class Sum(BaseModel):
    total: int
    words: str


def client(fake: FakeOpenAI, **overrides) -> tuple[LLMClient, MemoryStore, list[float]]:
    waits: list[float] = []
    settings = LLMSettings(base_url=fake.base_url, api_key="test", model="m", timeout=overrides.pop("timeout", 5.0),
                           max_retries=overrides.pop("max_retries", 3), prices={"m": (2.0, 8.0)}, **overrides)
    store = MemoryStore()
    return LLMClient(settings, store, sleep=waits.append), store, waits


def test_an_answer_is_cached_and_recorded_with_its_tokens_and_cost():
    with FakeOpenAI({"m": [{"answers": [{"content": "Hello!", "prompt_tokens": 1000, "completion_tokens": 500}]}]}) as fake:
        llm, store, _ = client(fake)
        first = llm.complete(role="agent", stage="check", messages=ASK, prompt_version="v1")
        again = llm.complete(role="agent", stage="check", messages=ASK, prompt_version="v1")
        assert (first.content, again.content, fake.count()) == ("Hello!", "Hello!", 1)  # the second from the cache
    assert [c.cached for c in store.calls] == [False, True]
    call = store.calls[0]
    assert (call.stage, call.role, call.model, call.prompt_version, call.outcome) == ("check", "agent", "m", "v1", "ok")
    assert (call.prompt_tokens, call.completion_tokens, call.cost) == (1000, 500, 0.006)  # 1000×2 + 500×8 per 1M
    assert call.request["messages"] == ASK and call.latency_ms > 0


def test_a_429_waits_what_retry_after_says_then_succeeds():
    with FakeOpenAI({"m": [{"answers": [{"status": 429, "retry_after": 7}, {"content": "ok"}]}]}) as fake:
        llm, store, waits = client(fake)
        assert llm.complete(role="agent", stage="s", messages=ASK).content == "ok"
        assert waits == [7.0] and fake.count() == 2 and store.calls[0].attempts == 2


def test_server_errors_back_off_and_give_up_with_a_clear_outcome():
    with FakeOpenAI({"m": [{"answers": [{"status": 500}]}]}) as fake:
        llm, store, waits = client(fake, max_retries=2)
        with pytest.raises(LLMError) as failure:
            llm.complete(role="agent", stage="s", messages=ASK)
        assert failure.value.outcome == "server_error" and "after 3 attempts" in str(failure.value)
        assert fake.count() == 3 and len(waits) == 2 and waits[1] > waits[0]
        assert store.calls[-1].outcome == "server_error" and store.calls[-1].error


def test_a_slow_answer_times_out():
    with FakeOpenAI({"m": [{"answers": [{"delay": 2.0, "content": "late"}]}]}) as fake:
        llm, store, _ = client(fake, timeout=0.5, max_retries=1)
        started = time.monotonic()
        with pytest.raises(LLMError) as failure:
            llm.complete(role="agent", stage="s", messages=ASK)
        assert failure.value.outcome == "timeout" and time.monotonic() - started < 4
        assert store.calls[-1].outcome == "timeout"


def test_a_truncated_answer_and_a_body_that_is_no_completion_are_refused():
    with FakeOpenAI({"m": [{"when": ["cut"], "answers": [{"truncated": True, "content": '{"total": '}]},
                           {"when": ["junk"], "answers": [{"garbage": "<html>oops</html>"}]}]}) as fake:
        llm, store, _ = client(fake, max_retries=0)
        with pytest.raises(LLMError) as cut:
            llm.complete(role="agent", stage="s", messages=[{"role": "user", "content": "cut"}])
        with pytest.raises(LLMError) as junk:
            llm.complete(role="agent", stage="s", messages=[{"role": "user", "content": "junk"}])
    assert cut.value.outcome == "truncated" and junk.value.outcome == "invalid_output"
    assert llm.store.cached(store.calls[0].cache_key) is None  # a failed answer is never a cache entry


def test_structured_output_feeds_the_validation_error_back_until_it_fits():
    answers = [{"content": "Sure! The total is 5."}, {"json": {"total": "five", "words": "five"}},
               {"content": '```json\n{"total": 5, "words": "five"}\n```'}]
    with FakeOpenAI({"m": [{"answers": answers}]}) as fake:
        llm, store, _ = client(fake)
        result = llm.structured(role="gate", stage="s", prompt=PROMPT, variables={"a": 2, "b": 3}, schema=Sum)
        assert result == Sum(total=5, words="five") and fake.count() == 3
        corrections = [m["content"] for m in fake.requests[2]["messages"] if m["role"] == "user"]
    assert "Invalid JSON" in corrections[1] and "total" in corrections[2]  # each error was fed back
    assert fake.requests[0]["response_format"] == {"type": "json_object"}
    assert "JSON Schema" in fake.requests[0]["messages"][0]["content"]


def test_structured_output_gives_up_with_invalid_output_after_the_bounded_corrections():
    with FakeOpenAI({"m": [{"answers": [{"content": "no"}]}]}) as fake:
        llm, store, _ = client(fake, validation_retries=1)
        with pytest.raises(LLMError) as failure:
            llm.structured(role="gate", stage="s", prompt=PROMPT, variables={"a": 1, "b": 1}, schema=Sum)
        assert failure.value.outcome == "invalid_output" and fake.count() == 2
    assert store.calls[-1].outcome == "invalid_output"


def test_requests_beyond_the_machine_limit_wait_for_a_slot(tmp_path):
    with FakeOpenAI({"m": [{"answers": [{"delay": 0.4, "content": "ok"}]}]}) as fake:
        llm, _, _ = client(fake, concurrency=2, slots_dir=str(tmp_path / "slots"))
        in_flight, peak, lock = [0], [0], threading.Lock()
        original = llm._sdk.chat.completions.create

        def counting(**kwargs):
            with lock:
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
            try:
                return original(**kwargs)
            finally:
                with lock:
                    in_flight[0] -= 1

        llm._sdk.chat.completions.create = counting
        threads = [threading.Thread(target=llm.complete, kwargs={
            "role": "agent", "stage": "s", "messages": [{"role": "user", "content": f"n{i}"}]}) for i in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert fake.count() == 5 and peak[0] == 2


def test_a_client_without_an_endpoint_says_what_to_set():
    with pytest.raises(LLMError, match="SCALEENV_LLM_BASE_URL"):
        LLMClient(LLMSettings())


@pytest.mark.django_db
def test_llm_check_reports_json_and_tool_calling(settings):
    from io import StringIO

    from django.core.management import call_command

    script = {"m": [{"when": ["tool"], "answers": [{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]}]},
                    {"answers": [{"json": {"ok": True, "sum": 5}}]}]}
    with FakeOpenAI(script) as fake:
        settings.SCALEENV_LLM = {**settings.SCALEENV_LLM, "base_url": fake.base_url, "model": "m"}
        out = StringIO()
        call_command("llm_check", stdout=out)
    text = out.getvalue()
    assert "model     m" in text and "json      works" in text and "tools     work" in text
