"""The configured LLM's second opinion for ``semantic`` columns (Django-free).

The rules of :mod:`tasks.semantic` decide every pair; a pair that only their overlap rule rejects
(words missing or added, no number, name, negation, opposite, swap or joined detail) is asked of the
model when ``SCALEENV_SEMANTIC_JUDGE=llm`` (docs/semantic.md, "The LLM judge"). A failure of the
model (timeout, refusal, output that is not the schema's) is no opinion: the rules' decision stands
and the failure is recorded with the decision.

Every answer is cached twice: by :class:`~environments.llm.LLMClient` under the request's hash (the
same pair is never asked twice, so re-scoring a run gives the same reward) and in this object's memo
(so a session can ask before it takes its lock and score again under it without a request). A
failure is remembered for ``FAILURE_MEMO_SECONDS`` only: the score under the lock that follows does
not wait for the model again, and a later score asks anew.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from typing import Any

from pydantic import BaseModel, Field

from environments.llm import LLMClient, LLMError
from environments.llm import load as load_prompt

JUDGE_ROLE = "semantic_judge"
MAX_TEXT_CHARS = 2000  # a longer side gets no opinion: the model must see every word it judges
FAILURE_MEMO_SECONDS = 60.0
MEMO_SIZE = 4096  # pairs a process remembers (least recently used first out); the LLM cache keeps all


class SemanticVerdict(BaseModel):
    same_meaning: bool = Field(description="true only when the agent's text says the same as the expected text")
    reason: str = Field(default="", max_length=400, description="one short sentence")


class LLMJudge:
    """Callable as a :class:`tasks.semantic.Judge`: True, False, or None when the model failed."""

    def __init__(self, client: LLMClient) -> None:
        self.client = client.with_context(role=JUDGE_ROLE)
        self.prompt = load_prompt(JUDGE_ROLE)
        self._memo: OrderedDict[tuple[str, str], tuple[dict[str, Any], float]] = OrderedDict()  # -> (decision, until)
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        return self.client.settings.model_for(JUDGE_ROLE)

    def decision(self, expected: str, got: str) -> dict[str, Any]:
        """What the model said of the pair: ``same`` (True, False or None), ``reason`` or ``error``."""
        if len(expected) > MAX_TEXT_CHARS or len(got) > MAX_TEXT_CHARS:
            return {"same": None, "error": f"too long to judge (over {MAX_TEXT_CHARS} characters)"}
        key = (expected, got)
        with self._lock:
            known = self._memo.get(key)
            if known is not None:
                self._memo.move_to_end(key)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        variables = {"expected": json.dumps(expected, ensure_ascii=False), "got": json.dumps(got, ensure_ascii=False)}
        try:
            verdict = self.client.structured(role=JUDGE_ROLE, stage="reward_judge", prompt=self.prompt,
                                             variables=variables, schema=SemanticVerdict, max_tokens=200)
            decided: dict[str, Any] = {"same": verdict.same_meaning, "reason": verdict.reason}
            until = float("inf")
        except LLMError as exc:  # no opinion, for a while
            decided, until = {"same": None, "error": f"{exc.outcome}: {str(exc)[:300]}"}, time.monotonic() + FAILURE_MEMO_SECONDS
        with self._lock:
            self._memo[key] = (decided, until)
            self._memo.move_to_end(key)
            while len(self._memo) > MEMO_SIZE:
                self._memo.popitem(last=False)
        return decided

    def __call__(self, expected: str, got: str) -> bool | None:
        return self.decision(expected, got)["same"]


class RecordingJudge:
    """Wraps a judge for one score: remembers what it was asked and answered (the breakdown's
    ``judged``), so a reader sees which columns the model decided and why."""

    def __init__(self, judge: Any) -> None:
        self.judge = judge
        self.decisions: list[dict[str, Any]] = []

    def __call__(self, expected: str, got: str) -> bool | None:
        decision = self.judge.decision(expected, got) if hasattr(self.judge, "decision") else {
            "same": self.judge(expected, got)}
        self.decisions.append({"expected": expected[:MAX_TEXT_CHARS], "got": got[:MAX_TEXT_CHARS],
                               "got_chars": len(got), **decision})
        return decision["same"]
