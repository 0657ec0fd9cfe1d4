"""Versioned prompt files (Django-free): ``environments/llm/prompts/<name>.md``.

A prompt file is a small front matter and two sections::

    ---
    role: tool_designer
    version: 3
    ---
    # system
    You design the tools of ...
    # user
    Domain: {{domain_name}} ...

``{{name}}`` is replaced by the variable (strings as they are, anything else as JSON). The version a
call records is ``<name>@v<version>+<hash of the file>``, so an edit that forgets to bump the version
still changes what is recorded (and the cache key, since the text changes).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

PROMPTS = Path(__file__).resolve().parent / "prompts"
_PLACEHOLDER = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


class PromptError(ValueError):
    pass


@dataclass(frozen=True)
class Prompt:
    name: str
    role: str
    version: str
    system: str
    user: str

    def render(self, text: str, variables: dict[str, Any]) -> str:
        def value(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in variables:
                raise PromptError(f"prompt {self.name} needs {key!r}")
            item = variables[key]
            return item if isinstance(item, str) else json.dumps(item, ensure_ascii=False, indent=1, sort_keys=True)

        return _PLACEHOLDER.sub(value, text)

    def messages(self, variables: dict[str, Any], schema: type[BaseModel] | None = None) -> list[dict[str, Any]]:
        system = self.render(self.system, variables)
        if schema is not None:
            system += ("\n\nAnswer with one JSON object (no prose, no code fence) that follows this JSON Schema:\n"
                       + json.dumps(schema.model_json_schema(), ensure_ascii=False, sort_keys=True))
        return [{"role": "system", "content": system}, {"role": "user", "content": self.render(self.user, variables)}]


@lru_cache(maxsize=64)
def load(name: str) -> Prompt:
    path = PROMPTS / f"{name}.md"
    if not path.exists():
        raise PromptError(f"no prompt file {path}")
    text = path.read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n(.*)$", text, re.S)
    if not match:
        raise PromptError(f"{path}: no front matter")
    meta = dict(line.split(":", 1) for line in match.group(1).splitlines() if ":" in line)
    meta = {k.strip(): v.strip() for k, v in meta.items()}
    sections = re.split(r"^# (system|user)\s*$", match.group(2), flags=re.M)
    parts = {sections[i]: sections[i + 1].strip() for i in range(1, len(sections) - 1, 2)}
    if "system" not in parts or "user" not in parts:
        raise PromptError(f"{path}: needs a '# system' and a '# user' section")
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return Prompt(name=name, role=meta.get("role", name), version=f"{name}@v{meta.get('version', '0')}+{digest}",
                  system=parts["system"], user=parts["user"])


def available() -> list[str]:
    return sorted(p.stem for p in PROMPTS.glob("*.md"))
