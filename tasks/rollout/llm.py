"""Rollouts with models (Django-free): an LLM agent with OpenAI function calling and an LLM user simulator.

* The **agent** sees only what a deployed agent would: the domain's policy (its system prompt, framed by
  ``prompts/agent.md``), the tools as OpenAI function schemas, the user's messages and the tools'
  observations. Never the scenario, s_gt, the gold calls or the rubric.
* The **user** follows τ²-bench's conventions (tasks-that-teach.md §2): it is initialized with the
  rendered user scenario (``prompts/user.md``), writes one message at a time, reveals information only
  when asked, never invents any, and ends with ``###STOP###`` (τ²'s ``###TRANSFER###`` and
  ``###OUT-OF-SCOPE###`` end the conversation the same way). Its conversation is the agent's with the
  roles swapped, as τ² does.

Both go through :class:`environments.llm.LLMClient`, so every call is cached and recorded; an
:class:`~environments.llm.LLMError` is raised to the episode loop, which ends the run with
``agent_error`` or ``user_error`` and the error's outcome and message.
"""

from __future__ import annotations

import json
import random
from typing import Any

from environments.llm import LLMClient, LLMError
from environments.llm import load as load_prompt
from tasks.spec import TaskSpec

from .user import LEAVE, MAX_USER_TURNS, STOP

AGENT_ROLE = "agent"
USER_ROLE = "user"
USER_CONTROL = ("###TRANSFER###", "###OUT-OF-SCOPE###")
AGENT_GREETING = "Hi! How can I help you today?"  # what the user simulator answers first (τ²'s greeting)


class LLMAgent:
    """The agent: one chat completion per turn, the tools offered as functions."""

    name = "llm"

    def __init__(self, task: TaskSpec, client: LLMClient, rng: random.Random | None = None) -> None:
        self.task = task
        self.client = client.with_context(role="agent")
        self.prompt = load_prompt("agent")
        self.system = self.prompt.render(self.prompt.system, {"policy": task.policy or "(no policy was written)",
                                                              "stop": STOP})

    @property
    def model(self) -> str:
        return self.client.settings.model_for(AGENT_ROLE)

    def act(self, messages: list[dict[str, Any]], observations: list[dict[str, Any]]) -> dict[str, Any]:
        # The episode's system message is the bare policy; the model gets it framed by the prompt file.
        conversation = [{"role": "system", "content": self.system}] + [m for m in messages if m["role"] != "system"]
        answer = self.client.complete(role=AGENT_ROLE, stage="rollout_agent", messages=conversation,
                                      prompt_version=self.prompt.version, tools=self.task.tools or None)
        if answer.tool_calls:
            calls = []
            for call in answer.tool_calls:
                try:
                    arguments = json.loads(call["arguments"] or "{}")
                except ValueError as exc:
                    raise LLMError("invalid_output", f"the agent called {call['name']} with arguments that are "
                                                     f"not JSON: {call['arguments'][:200]!r}") from exc
                if not isinstance(arguments, dict):
                    raise LLMError("invalid_output", f"the agent called {call['name']} with {type(arguments).__name__}"
                                                     " arguments, not an object")
                calls.append({"name": call["name"], "arguments": arguments})
            return {"tool_calls": calls}
        if not answer.content.strip():
            raise LLMError("invalid_output", "the agent answered with neither a message nor a tool call")
        return {"content": answer.content}


class LLMUser:
    """The user simulator: the scenario in its system prompt, the agent's messages as its 'user' turns."""

    def __init__(self, task: TaskSpec, client: LLMClient, max_turns: int = MAX_USER_TURNS) -> None:
        self.client = client.with_context(role="user")
        self.prompt = load_prompt("user")
        self.system = self.prompt.render(self.prompt.system, {"scenario": task.instruction, "stop": STOP})
        self.history: list[dict[str, Any]] = [{"role": "user", "content": AGENT_GREETING}]
        self.max_turns = max_turns
        self.turns = 0
        self.stopped = False

    @property
    def model(self) -> str:
        return self.client.settings.model_for(USER_ROLE)

    def _say(self) -> str:
        answer = self.client.complete(role=USER_ROLE, stage="rollout_user", prompt_version=self.prompt.version,
                                      messages=[{"role": "system", "content": self.system}, *self.history])
        text = answer.content.strip()
        if not text:
            raise LLMError("invalid_output", "the user simulator answered with an empty message")
        for token in USER_CONTROL:  # the conversation ends the same way; the words stay in the transcript
            if token in text and STOP not in text:
                text = f"{text} {STOP}"
        self.history.append({"role": "assistant", "content": text})
        self.stopped = STOP in text
        return text

    def first_message(self) -> str:
        return self._say()

    def respond(self, agent_text: str) -> str:
        self.turns += 1
        if self.stopped:
            return STOP
        if self.turns > self.max_turns:
            self.stopped = True
            return f"{LEAVE} {STOP}"
        self.history.append({"role": "user", "content": agent_text or ""})
        return self._say()

    @classmethod
    def replay(cls, task: TaskSpec, client: LLMClient, said: list[str], heard: list[str]) -> LLMUser:
        """The user as it is after saying ``said`` (its opening first) and hearing ``heard`` (the agent's
        messages, one after each of its own): an HTTP session rebuilds it from the stored conversation
        in any process; its next answer is one request (or a cache hit when the conversation repeats)."""
        user = cls(task, client)
        for index, text in enumerate(said):
            user.history.append({"role": "assistant", "content": text})
            if index < len(heard):
                user.history.append({"role": "user", "content": heard[index]})
                user.turns += 1
        if user.history[-1]["role"] == "user":  # the last agent message is answered by respond()
            user.history.pop()
            user.turns -= 1
        user.stopped = any(STOP in text for text in said)
        return user
