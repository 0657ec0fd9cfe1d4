"""Export writers (Django-free): plain dicts in, JSON Lines out. The Django side (which tasks and
runs, the batch kind, the files) is in tasks/services.py; formats are described in docs/exports.md."""

from .jsonl import HashingWriter, RawJSON, dumps, encode_object, json_bytes, json_text
from .openai_jsonl import OpenAIWriter, clean_messages, example_problems, tools_fragment
from .tasks_jsonl import LINE_KEYS, SCHEMA, TASK_FIELDS, TASK_JSON_FIELDS, DomainInfo, TasksWriter, task_line

__all__ = ["LINE_KEYS", "SCHEMA", "TASK_FIELDS", "TASK_JSON_FIELDS", "DomainInfo", "HashingWriter", "OpenAIWriter", "RawJSON",
           "TasksWriter", "clean_messages", "dumps", "encode_object", "example_problems", "json_bytes", "json_text", "task_line",
           "tools_fragment"]
