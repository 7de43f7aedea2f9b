"""The layout is the stage graph: ``core/`` and ``tracking/`` (the MLflow layer) are shared layers,
``core`` imports only itself, ``tracking`` only ``core`` and itself, each stage package only the
shared layers and itself; nothing forms an import cycle; and each DVC stage's source deps are
exactly the modules its command can import (every one covered, no folder it never imports).

Imports are read from the source (AST), including the ones inside functions, which is where the
stages import torch, transformers and their own heavy modules.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
import yaml

from tokenskip.cli import STAGE_COMMANDS

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "tokenskip"
STAGES = sorted({module.split(".")[1] for module, _ in STAGE_COMMANDS.values()})
ENTRY = ("tokenskip", "tokenskip.cli")  # the entry point every stage command runs through
ENTRY_POINTS = {*ENTRY, "tokenskip.__main__"}  # may import any stage
SHARED = {"core": {"core"}, "tracking": {"core", "tracking"}}  # layer -> what it may import


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module under ``root/tokenskip``."""
    modules = {}
    for path in sorted((root / "tokenskip").rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def imported_modules(path: Path, known: dict[str, Path]) -> set[str]:
    """Project modules that ``path`` imports anywhere in its body (``from a import b`` counts
    ``a.b`` when that is a module, else ``a``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in known}


def with_parents(module: str) -> set[str]:
    """Importing ``a.b.c`` runs ``a/__init__``, ``a/b/__init__`` and ``a.b.c``."""
    parts = module.split(".")
    return {".".join(parts[: i + 1]) for i in range(len(parts))}


def import_closure(start: list[str], known: dict[str, Path]) -> set[str]:
    """Every project module reachable from ``start``, parent packages included."""
    seen: set[str] = set()
    todo = [m for s in start for m in with_parents(s)]
    while todo:
        module = todo.pop()
        if module in seen or module not in known:
            continue
        seen.add(module)
        todo.extend(m for found in imported_modules(known[module], known) for m in with_parents(found))
    return seen


def contract_violations(root: Path) -> list[str]:
    """Imports that break the contract: a shared layer imports only what :data:`SHARED` allows; a
    stage only the shared layers and itself."""
    known = module_files(root)
    problems = []
    for module, path in known.items():
        parts = module.split(".")
        if len(parts) < 2 or module in ENTRY_POINTS:
            continue
        owner = parts[1]
        allowed = SHARED.get(owner, {*SHARED, owner})
        for target in imported_modules(path, known):
            target_parts = target.split(".")
            if target == "tokenskip" or target_parts[1] not in allowed:
                problems.append(f"{module} imports {target}")
    return problems


def import_cycles(root: Path) -> list[list[str]]:
    """Cycles among project modules (imports inside functions included)."""
    known = module_files(root)
    graph = {m: imported_modules(p, known) - {m} for m, p in known.items()}
    cycles, state = [], dict.fromkeys(graph, 0)  # 0 new, 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state[nxt] == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif state[nxt] == 0:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(graph):
        if state[node] == 0:
            visit(node, [node])
    return cycles


def command_of(cmd: str) -> str:
    """``tokenskip generate --base ...`` -> ``generate``."""
    words = cmd.split()
    assert words[0] == "tokenskip", f"stage command is not a tokenskip command: {cmd}"
    return words[1]


def undeclared_modules(root: Path, dvc_yaml: Path) -> dict[str, list[str]]:
    """Per DVC stage: source files its command can import that no dep path covers."""
    known = module_files(root)
    repo = dvc_yaml.parent
    missing: dict[str, list[str]] = {}
    for stage, spec in yaml.safe_load(dvc_yaml.read_text())["stages"].items():
        module, _ = STAGE_COMMANDS[command_of(spec["cmd"])]
        closure = import_closure([*ENTRY, module], known)
        deps = [(repo / d).resolve() for d in spec.get("deps", [])]
        files = sorted(known[m].resolve() for m in closure)
        uncovered = [str(f.relative_to(repo.resolve())) for f in files
                     if not any(f == d or d in f.parents for d in deps)]
        if uncovered:
            missing[stage] = uncovered
    return missing


def superfluous_deps(root: Path, dvc_yaml: Path) -> dict[str, list[str]]:
    """Per DVC stage: source deps (under ``src/``) holding no module its command can import."""
    known = module_files(root)
    repo = dvc_yaml.parent
    extra: dict[str, list[str]] = {}
    for stage, spec in yaml.safe_load(dvc_yaml.read_text())["stages"].items():
        module, _ = STAGE_COMMANDS[command_of(spec["cmd"])]
        files = [known[m].resolve() for m in import_closure([*ENTRY, module], known)]
        for dep in spec.get("deps", []):
            path = (repo / dep).resolve()
            if dep.startswith("src/") and not any(f == path or path in f.parents for f in files):
                extra.setdefault(stage, []).append(dep)
    return extra


def test_each_stage_imports_only_the_shared_layers_and_itself() -> None:
    assert contract_violations(SRC) == []


def test_no_import_cycles() -> None:
    assert import_cycles(SRC) == []


def test_dvc_deps_cover_every_module_a_stage_command_imports(repo_root: Path) -> None:
    assert undeclared_modules(SRC, repo_root / "dvc.yaml") == {}


def test_only_stages_that_import_a_shared_layer_list_it(repo_root: Path) -> None:
    assert superfluous_deps(SRC, repo_root / "dvc.yaml") == {}
    tracking = {stage for stage, spec in yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"].items()
                if "src/tokenskip/tracking" in spec.get("deps", [])}
    assert tracking == {"finetune", "register"}


def test_every_stage_has_a_package_with_a_thin_cli() -> None:
    for stage in STAGES:
        cli = PACKAGE / stage / "cli.py"
        assert cli.is_file(), f"{stage} has no cli.py"
        assert len(cli.read_text().splitlines()) <= 120, f"{cli} is not thin"


@pytest.fixture
def broken_copy(tmp_path: Path, repo_root: Path) -> Path:
    """A copy of the source tree and dvc.yaml to break on purpose."""
    shutil.copytree(SRC, tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(repo_root / "dvc.yaml", tmp_path / "dvc.yaml")
    return tmp_path


def test_the_checks_catch_a_cross_stage_import_a_cycle_and_a_missing_dep(broken_copy: Path) -> None:
    src = broken_copy / "src"
    evaluate = src / "tokenskip" / "evaluate" / "pareto.py"
    evaluate.write_text(evaluate.read_text() + "\n\ndef _late():\n    from tokenskip.prune.pruning import split_words\n")
    assert "tokenskip.evaluate.pareto imports tokenskip.prune.pruning" in contract_violations(src)
    missing = undeclared_modules(src, broken_copy / "dvc.yaml")
    assert "src/tokenskip/prune/pruning.py" in missing["evaluate"]

    io = src / "tokenskip" / "core" / "io.py"
    io.write_text(io.read_text() + "\n\ndef _late():\n    from tokenskip.core.answers import split_cot\n")
    answers = src / "tokenskip" / "core" / "answers.py"
    answers.write_text(answers.read_text() + "\n\ndef _late2():\n    from tokenskip.core.io import read_json\n")
    assert any({"tokenskip.core.io", "tokenskip.core.answers"} <= set(c) for c in import_cycles(src))


def test_the_checks_catch_a_tracking_import_without_its_dep_and_a_layer_importing_a_stage(
    broken_copy: Path,
) -> None:
    src, dvc_yaml = broken_copy / "src", broken_copy / "dvc.yaml"
    pareto = src / "tokenskip" / "evaluate" / "pareto.py"
    pareto.write_text(pareto.read_text() + "\n\ndef _late():\n    from tokenskip.tracking.names import ROLE_TAG\n")
    assert contract_violations(src) == []  # a stage may import the tracking layer ...
    assert "src/tokenskip/tracking/names.py" in undeclared_modules(src, dvc_yaml)["evaluate"]  # ... if listed

    names = src / "tokenskip" / "tracking" / "names.py"
    names.write_text(names.read_text() + "\n\ndef _late():\n    from tokenskip.register.gate import judge\n")
    assert "tokenskip.tracking.names imports tokenskip.register.gate" in contract_violations(src)

    stages = yaml.safe_load(dvc_yaml.read_text())
    stages["stages"]["prune"]["deps"].append("src/tokenskip/tracking")
    dvc_yaml.write_text(yaml.safe_dump(stages))
    assert superfluous_deps(src, dvc_yaml)["prune"] == ["src/tokenskip/tracking"]
