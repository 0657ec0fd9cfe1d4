"""The load generator's check of session starts: the first start of a task is parsed and checked in
full, later starts must carry the same messages and tool schemas byte for byte after their id."""

import json

import pytest

from tasks.loadbench import _Answer, _started_session

TOOLS = [{"type": "function", "function": {"name": "get_member", "parameters": {"type": "object"}}}]
MESSAGES = [{"role": "system", "content": "policy"}, {"role": "user", "content": "hello"}]


def started(session: int, messages=MESSAGES, tools=TOOLS) -> _Answer:
    return _Answer(201, json.dumps({"session": session, "messages": messages, "tools": tools},
                                   separators=(",", ":")).encode())


def test_later_starts_of_a_task_give_their_own_id_when_they_carry_the_first_ones_messages_and_tools():
    first_starts: dict[int, bytes] = {}
    assert _started_session(7, started(101), first_starts) == 101
    assert _started_session(7, started(102), first_starts) == 102


def test_a_start_with_other_tools_than_the_tasks_first_start_is_an_error():
    first_starts: dict[int, bytes] = {}
    _started_session(7, started(101), first_starts)
    other = [{"type": "function", "function": {"name": "get_staff", "parameters": {"type": "object"}}}]
    with pytest.raises(ValueError, match="other messages or tools"):
        _started_session(7, started(102, tools=other), first_starts)
    with pytest.raises(ValueError, match="other messages or tools"):
        _started_session(7, started(103, messages=MESSAGES[:1]), first_starts)


@pytest.mark.parametrize("body", [{"session": 5, "messages": MESSAGES, "tools": []},
                                  {"session": 5, "messages": [], "tools": TOOLS},
                                  {"messages": MESSAGES, "tools": TOOLS}])
def test_a_first_start_without_its_session_messages_or_tools_is_an_error(body):
    with pytest.raises(ValueError, match="without its session"):
        _started_session(7, _Answer(201, json.dumps(body).encode()), {})
