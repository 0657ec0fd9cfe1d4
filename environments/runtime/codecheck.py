"""Static check of generated tool code, before it is sent to a sandbox worker.

This is quality feedback, not the security boundary (the sandbox is): it gives a code writer —
an LLM or the procedural generator — fast, readable messages about code that would break the
runtime contract (docs/design.md, "Runtime contract") or determinism (wall-clock reads, unseeded randomness).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

ALLOWED_IMPORTS = frozenset({
    "collections", "dataclasses", "datetime", "decimal", "functools", "hashlib", "itertools",
    "json", "math", "re", "statistics", "string", "typing",
})
FORBIDDEN_NAMES = frozenset({
    "open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "getattr",
    "setattr", "delattr", "input", "breakpoint", "exit", "quit", "memoryview", "help",
})
# Attribute calls that read the wall clock or unseeded randomness: replay would diverge.
NONDETERMINISTIC_CALLS = frozenset({
    ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
    ("time", "time"), ("time", "monotonic"), ("uuid", "uuid4"), ("uuid", "uuid1"),
})


@dataclass(frozen=True)
class CodeProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def check_tool_code(source: str, tool_name: str) -> list[CodeProblem]:
    """Return the problems in ``source`` (empty when it follows the contract)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [CodeProblem(exc.lineno or 0, f"syntax error: {exc.msg}")]
    problems: list[CodeProblem] = []
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    target = next((f for f in functions if f.name == tool_name), None)
    if target is None:
        problems.append(CodeProblem(1, f"no top-level function named {tool_name!r}"))
    else:
        positional = [a.arg for a in target.args.posonlyargs + target.args.args]
        if positional[:2] != ["db", "ctx"]:
            problems.append(CodeProblem(target.lineno, "the function must start with the parameters (db, ctx)"))
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            continue  # module-level constants
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # docstring
        problems.append(CodeProblem(node.lineno, "only functions, classes, imports and constants at module level"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] not in ALLOWED_IMPORTS:
                    problems.append(CodeProblem(node.lineno, f"import of {alias.name!r} is not allowed"))
        elif isinstance(node, ast.ImportFrom):
            if node.level or (node.module or "").split(".")[0] not in ALLOWED_IMPORTS:
                problems.append(CodeProblem(node.lineno, f"import from {node.module!r} is not allowed"))
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            problems.append(CodeProblem(node.lineno, f"use of {node.id!r} is not allowed"))
        elif isinstance(node, ast.Name) and node.id.startswith("__") and node.id.endswith("__"):
            problems.append(CodeProblem(node.lineno, f"dunder name {node.id!r} is not allowed"))
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("__"):
                problems.append(CodeProblem(node.lineno, f"dunder attribute {node.attr!r} is not allowed"))
            base = node.value
            base_name = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else None
            if (base_name, node.attr) in NONDETERMINISTIC_CALLS:
                problems.append(CodeProblem(
                    node.lineno, f"{base_name}.{node.attr} is non-deterministic: use ctx.now() or ctx.new_id()"))
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            problems.append(CodeProblem(node.lineno, "global/nonlocal state is not allowed"))
    return problems
