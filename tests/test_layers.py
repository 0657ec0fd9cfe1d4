"""The layers hold (docs/design.md): an import walk over the source, with ``ast``.

* ``environments`` never imports ``tasks`` (the lower app knows nothing of the upper one);
* the engine packages import neither Django nor DRF nor Celery, nor the apps' Django modules;
* the runtime imports nothing above it (no synthesis, no graph, no app code).
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ("environments/runtime", "environments/synthesis", "environments/graph.py", "tasks/instantiation",
          "tasks/reward.py", "tasks/audit.py", "tasks/rollout", "tasks/spec.py", "tasks/semantic.py",
          "tasks/semantic_lexicon.py", "tasks/judge.py", "tasks/phrasing.py", "tasks/probe.py",
          "tasks/scenario", "tasks/client.py", "tasks/exporters", "tasks/charts.py", "tasks/agreement.py",
          "environments/llm")
FRAMEWORKS = ("django", "rest_framework", "celery", "drf_spectacular", "django_filters", "django_htmx")


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(root: Path, path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in a file, relative imports resolved."""
    package = _module_name(root, path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if node.module is None or node.level:  # `from . import x`: x may be a module
                found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
            else:
                found.append((node.lineno, module))
    return found


def _files(root: Path, target: str) -> list[Path]:
    path = root / target
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*.py") if "migrations" not in p.parts) if path.exists() else []


def _is_under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(root: Path = ROOT) -> list[str]:
    found: list[str] = []
    for path in _files(root, "environments"):
        for line, module in imports_of(root, path):
            if _is_under(module, "tasks"):
                found.append(f"{path.relative_to(root)}:{line}: environments imports {module}")
    engine_files = [p for target in ENGINE for p in _files(root, target)]
    engine_modules = {_module_name(root, p) for p in engine_files}
    for path in engine_files:
        for line, module in imports_of(root, path):
            top = module.split(".")[0]
            if top in FRAMEWORKS:
                found.append(f"{path.relative_to(root)}:{line}: engine module imports {module}")
            elif top in ("environments", "tasks") and not any(
                    _is_under(module, m) or _is_under(m, module) for m in engine_modules):
                found.append(f"{path.relative_to(root)}:{line}: engine module imports app code {module}")
    for path in _files(root, "environments/runtime"):
        for line, module in imports_of(root, path):
            if module.split(".")[0] in ("environments", "tasks") and not _is_under(module, "environments.runtime"):
                found.append(f"{path.relative_to(root)}:{line}: the runtime imports {module}")
    return found


def test_the_layers_hold():
    assert violations() == []


def _copy(tmp_path: Path) -> Path:
    for app in ("environments", "tasks"):
        shutil.copytree(ROOT / app, tmp_path / app, ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    return tmp_path


def test_the_walk_catches_environments_importing_tasks(tmp_path):
    root = _copy(tmp_path)
    target = root / "environments" / "selectors.py"
    target.write_text(target.read_text() + "\nfrom tasks.models import Task  # noqa\n")
    assert any("environments imports tasks.models" in v for v in violations(root))


def test_the_walk_catches_django_in_the_engine_and_the_runtime_reaching_up(tmp_path):
    root = _copy(tmp_path)
    reward = root / "tasks" / "reward.py"
    reward.write_text(reward.read_text() + "\n\ndef _late():\n    from django.conf import settings  # noqa\n")
    runtime = root / "environments" / "runtime" / "statekit.py"
    runtime.write_text(runtime.read_text() + "\nfrom ..synthesis import spec  # noqa\n")
    found = violations(root)
    assert any("tasks/reward.py" in v and "django.conf" in v for v in found)
    assert any("the runtime imports environments.synthesis.spec" in v for v in found)
