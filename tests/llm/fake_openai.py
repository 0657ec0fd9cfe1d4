"""A small OpenAI-compatible HTTP server for tests: real sockets, real JSON, the openai SDK on the other side.

It answers ``POST /v1/chat/completions`` from a **script** of recorded answers:

    {
      "<model>": [                                   # the role's model (tests give each role its own)
        {"when": ["substring", ...],                 # all must occur in the request's messages (optional)
         "answers": [answer, answer, ...]},          # served in turn; the last one repeats
        ...
      ],
      ...
    }

An ``answer`` is one of:

    {"content": "text"}                              # an assistant message (JSON text for structured roles)
    {"json": {...}}                                  # the same, serialized for you
    {"tool_calls": [{"name": "...", "arguments": {...}}], "content": ""}
    {"status": 429, "retry_after": 1}                # an error answer (any status), with Retry-After
    {"status": 500}
    {"delay": 3.0, ...}                              # wait before answering (a slow model; with another key)
    {"truncated": true, "content": "{\\"a\\": "}     # finish_reason "length"
    {"garbage": "not even json"}                     # a body that is not a chat completion

Rules of a model are tried in order; the first whose ``when`` all match serves the request. A
request nothing matches answers 404 with a message naming the model and the last user message, so
a test sees at once which recording is missing. Every request is logged (``requests``) so tests can
count them (a cached second run sends none).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAI:
    def __init__(self, script: dict[str, list[dict[str, Any]]]) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self._served: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                status, headers, payload, delay = fake._answer(self.path, body)
                if delay:
                    time.sleep(delay)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def count(self, model: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if model is None or r["model"] == model)

    # -- answering -----------------------------------------------------------------------------

    def _answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any, float]:
        with self._lock:
            self.requests.append(body)
            if not path.rstrip("/").endswith("/chat/completions"):
                return 404, {}, {"error": {"message": f"no route {path}"}}, 0.0
            model = body.get("model", "")
            text = "\n".join(str(m.get("content") or "") + json.dumps(m.get("tool_calls") or "")
                             for m in body.get("messages", []))
            for index, rule in enumerate(self.script.get(model, [])):
                if all(needle in text for needle in rule.get("when", [])):
                    served = self._served.get((model, index), 0)
                    self._served[(model, index)] = served + 1
                    answers = rule["answers"]
                    answer = answers[min(served, len(answers) - 1)]
                    break
            else:
                last = next((m.get("content") for m in reversed(body.get("messages", [])) if m.get("role") == "user"),
                            "")
                return 404, {}, {"error": {"message": f"no recording for model {model!r}; last user message: "
                                                      f"{str(last)[:300]}"}}, 0.0
        return self._render(model, answer)

    @staticmethod
    def _render(model: str, answer: dict[str, Any]) -> tuple[int, dict[str, str], Any, float]:
        delay = float(answer.get("delay", 0.0))
        if "status" in answer:
            headers = {"Retry-After": str(answer["retry_after"])} if "retry_after" in answer else {}
            return int(answer["status"]), headers, {"error": {"message": answer.get("message", "scripted error"),
                                                              "type": "scripted"}}, delay
        if "garbage" in answer:
            return 200, {}, str(answer["garbage"]).encode(), delay
        content = json.dumps(answer["json"]) if "json" in answer else answer.get("content", "")
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if answer.get("tool_calls"):
            message["tool_calls"] = [{"id": f"call_{i}", "type": "function", "function": {
                "name": call["name"], "arguments": call["arguments"] if isinstance(call["arguments"], str)
                else json.dumps(call["arguments"])}} for i, call in enumerate(answer["tool_calls"])]
            message["content"] = content or None
        finish = "length" if answer.get("truncated") else ("tool_calls" if answer.get("tool_calls") else "stop")
        prompt_tokens = int(answer.get("prompt_tokens", 120))
        completion_tokens = int(answer.get("completion_tokens", max(1, len(content) // 4)))
        return 200, {}, {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                         "model": model, "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                         "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                   "total_tokens": prompt_tokens + completion_tokens}}, delay
