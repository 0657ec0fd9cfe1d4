"""Episodes driven over HTTP by an outside agent (an RL trainer, an eval harness).

The session's state lives on its ``Run`` row (current state, id counter, messages, steps), so any
web process can serve any call: each call resets a pooled sandbox to the stored state, runs the
tool, and stores the result. Bad input becomes an error observation, never a server error.
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.db import transaction
from jsonschema import Draft202012Validator

from environments.runtime import statekit
from tasks.instantiation import domain_bundle
from tasks.rollout.episode import STOP, score, system_prompt, tool_message_content
from tasks.rollout.user import ScriptedUser
from tasks.spec import build_task_spec

from . import selectors
from .models import Run, Task
from .services import sandbox_pool

MAX_ARGUMENT_BYTES = 64 * 1024


class SessionError(Exception):
    """A request the session cannot take (closed session, unknown task): a 4xx, with this message."""


def start_session(task: Task, owner: Any, agent_model: str = "") -> tuple[Run, list[dict[str, Any]]]:
    view = selectors.domain_view(task.domain)
    spec = build_task_spec(view, task)
    opening = ScriptedUser(spec.script).first_message() if spec.script else spec.instruction
    messages = [{"role": "system", "content": system_prompt(spec)}, {"role": "user", "content": opening}]
    trial = Run.objects.filter(task=task, agent="external").count()
    run = Run.objects.create(task=task, agent="external", agent_model=agent_model[:120], trial=trial, seed=0,
                             messages=messages, steps=[], final_state=task.s0, termination=Run.Termination.RUNNING,
                             owner=owner if getattr(owner, "pk", None) else None,
                             session={"open": True, "ids_used": 0, "started": time.time()})
    return run, spec.tools


def _open(run: Run) -> None:
    if not run.session.get("open"):
        raise SessionError(f"session {run.pk} is finished ({run.termination}); start a new one")


def _observation(run: Run, name: str, arguments: Any, content: str, outcome: str, diff: dict[str, Any],
                 executed: bool = False) -> dict[str, Any]:
    call_id = f"call_{len(run.steps) + 1}"
    run.messages.append({"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "function", "function": {"name": str(name)[:200],
                                                         "arguments": json.dumps(arguments, default=str)[:MAX_ARGUMENT_BYTES]}}]})
    run.messages.append({"role": "tool", "tool_call_id": call_id, "content": content})
    run.steps.append({"index": len(run.steps), "kind": "tool_call", "tool": str(name)[:200], "arguments": arguments,
                      "outcome": outcome, "observation": content[:4000], "diff": diff, "executed": executed})
    if outcome != "success":
        run.tool_errors += 1
    return {"tool_call_id": call_id, "outcome": outcome, "content": content, "error": outcome != "success"}


def call_tool(run: Run, name: Any, arguments: Any) -> dict[str, Any]:
    """Execute one tool call of the session; malformed calls come back as error observations."""
    _open(run)
    task = run.task
    view = selectors.domain_view(task.domain)
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            result = _observation(run, name, arguments, f"Error: InvalidArguments: arguments are not valid JSON ({exc.msg})",
                                  "anticipated_rejection", {})
            run.save(update_fields=["messages", "steps", "tool_errors"])
            return result
    if not isinstance(name, str) or name not in view.tools:
        result = _observation(run, name, arguments, f"Error: UnknownTool: there is no tool named {str(name)[:80]!r}",
                              "anticipated_rejection", {})
    elif not isinstance(arguments, dict):
        result = _observation(run, name, arguments, "Error: InvalidArguments: arguments must be a JSON object",
                              "anticipated_rejection", {})
    else:
        errors = sorted(Draft202012Validator(view.tools[name].parameters).iter_errors(arguments), key=lambda e: e.path)
        if errors:
            detail = "; ".join(f"{'/'.join(map(str, e.path)) or 'arguments'}: {e.message}" for e in errors[:3])
            result = _observation(run, name, arguments, f"Error: InvalidArguments: {detail[:1000]}",
                                  "anticipated_rejection", {})
        else:
            sandbox = sandbox_pool().get(domain_bundle(view))
            sandbox.reset(statekit.copy_state(run.final_state))
            sandbox.set_ids_used(int(run.session.get("ids_used", 0)))
            outcome = sandbox.call(name, arguments)
            state, state_hash = sandbox.get_state()
            run.final_state, run.final_hash = state, state_hash
            run.session["ids_used"] = sandbox.ids_used
            result = _observation(run, name, arguments, tool_message_content(outcome), outcome["outcome"],
                                  outcome.get("diff", {}), executed=True)
    run.save(update_fields=["messages", "steps", "tool_errors", "final_state", "final_hash", "session"])
    return result


def send_message(run: Run, content: Any) -> dict[str, Any]:
    _open(run)
    text = str(content or "")[:20000]
    view = selectors.domain_view(run.task.domain)
    spec = build_task_spec(view, run.task)
    earlier = [m["content"] for m in run.messages if m["role"] == "assistant" and m.get("content") is not None]
    run.messages.append({"role": "assistant", "content": text})
    run.steps.append({"index": len(run.steps), "kind": "message", "content": text[:4000]})
    if STOP in text:
        run.save(update_fields=["messages", "steps"])
        return {"user": None, "finished": True, **finish(run, "agent_stop")}
    if spec.script is None:
        reply = f"Thanks. {STOP}"
    else:  # the scripted user is deterministic: rebuilt from the conversation so far, in any process
        reply = ScriptedUser.replay(spec.script, earlier).respond(text)
    run.messages.append({"role": "user", "content": reply})
    run.steps.append({"index": len(run.steps), "kind": "user", "content": reply[:4000]})
    run.save(update_fields=["messages", "steps"])
    if STOP in reply:
        return {"user": reply, "finished": True, **finish(run, "user_stop")}
    return {"user": reply, "finished": False}


def _parsed(content: Any) -> Any:
    try:
        return json.loads(content) if isinstance(content, str) else content
    except json.JSONDecodeError:
        return content


def finish(run: Run, termination: str = "agent_stop") -> dict[str, Any]:
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if not run.session.get("open"):
            return {"reward": run.reward, "breakdown": run.breakdown, "termination": run.termination}
        view = selectors.domain_view(run.task.domain)
        spec = build_task_spec(view, run.task)
        observations = [_parsed(s.get("observation")) for s in run.steps
                        if s.get("kind") == "tool_call" and s.get("outcome") == "success"]
        run.reward, run.breakdown = score(spec, run.final_state, run.messages, observations, termination)
        run.termination = termination
        run.final_hash = run.final_hash or statekit.state_hash(run.final_state)
        run.session = {**run.session, "open": False}
        run.seconds = round(time.time() - float(run.session.get("started", time.time())), 3)
        run.save()
    return {"reward": run.reward, "breakdown": run.breakdown, "termination": run.termination}
