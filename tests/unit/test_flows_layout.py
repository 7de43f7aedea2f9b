"""The flows are a client of the library: nothing under ``src/tokenskip`` imports them (by an import
statement anywhere in a module, or by a module-name string such as ``import_module("flows.x")``);
the ``tokenskip`` CLI reaches ``run``, ``deploy``, ``ablation`` and ``ui`` only through the
entry-point group ``tokenskip.commands``; the folder ``flows/`` is installed as ``tokenskip_flows``
and no top-level ``flows`` package is importable from site-packages.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

from setuptools import find_packages

from tests.unit.test_layout import PACKAGE, SRC, module_files
from tokenskip.cli import COMMAND_GROUP, STAGE_COMMANDS

FLOW_PACKAGES = ("flows", "tokenskip_flows")
# a string that names a flows module, e.g. "flows.commands", "tokenskip_flows.ui:ui"
FLOW_MODULE_NAME = re.compile(r"^(?:tokenskip_)?flows(?:\.[\w.]+)?(?::\w+)?$")
TOOL_COMMANDS = {"run", "restore", "deploy", "ablation", "ui", "serve"}


def _is_flow_module(name: str) -> bool:
    return name.split(".")[0] in FLOW_PACKAGES


def flow_references(root: Path) -> list[str]:
    """``module: what`` for every import of a flows package, and every string constant that names a
    flows module, in the modules under ``root/tokenskip`` (imports inside functions included)."""
    found = []
    for module, path in module_files(root).items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found += [f"{module}: import {a.name}" for a in node.names if _is_flow_module(a.name)]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if _is_flow_module(node.module):
                    found.append(f"{module}: from {node.module} import ...")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if FLOW_MODULE_NAME.match(node.value):
                    found.append(f"{module}: string {node.value!r}")
    return found


def test_the_library_never_imports_the_flows() -> None:
    assert flow_references(SRC) == []


def test_the_check_catches_a_planted_import_and_a_module_name_string(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    pareto = src / "tokenskip" / "evaluate" / "pareto.py"
    pareto.write_text(pareto.read_text() + "\n\ndef _late():\n    import flows.support\n"
                      "    from tokenskip_flows.pipeline import run_once\n")
    cli = src / "tokenskip" / "cli.py"
    cli.write_text(cli.read_text() + '\nTOOLS = {"run": ("flows.commands", "run"), "ui": "tokenskip_flows.ui:ui"}\n')
    assert sorted(flow_references(src)) == [
        "tokenskip.cli: string 'flows.commands'",
        "tokenskip.cli: string 'tokenskip_flows.ui:ui'",
        "tokenskip.evaluate.pareto: from tokenskip_flows.pipeline import ...",
        "tokenskip.evaluate.pareto: import flows.support",
    ]


def test_the_tool_commands_are_entry_points_of_the_flows(repo_root: Path) -> None:
    declared = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["entry-points"][COMMAND_GROUP]
    installed = {ep.name: ep.value for ep in entry_points(group=COMMAND_GROUP)}
    assert installed == declared, "the installed entry points differ from pyproject.toml: reinstall (make install)"
    assert set(declared) == TOOL_COMMANDS and not set(declared) & set(STAGE_COMMANDS)
    assert all(value.startswith("tokenskip_flows.") for value in declared.values())


def test_pyproject_installs_every_library_package_and_the_flows_as_tokenskip_flows(repo_root: Path) -> None:
    setuptools = tomllib.loads((repo_root / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"": "src", "tokenskip_flows": "flows"}
    library = find_packages(str(SRC))
    assert sorted(setuptools["packages"]) == sorted([*library, "tokenskip_flows"]), (
        "pyproject.toml [tool.setuptools] packages must list every package under src/ (and tokenskip_flows)")
    assert "flows" not in setuptools["packages"] and (repo_root / "flows" / "__init__.py").is_file()


def _python(code: str, cwd: Path) -> str:
    """Run ``code`` in a fresh, isolated interpreter (-I: no PYTHONPATH, no current directory on the
    import path: only site-packages); its last output line."""
    done = subprocess.run([sys.executable, "-I", "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_no_top_level_flows_package_is_importable_from_site_packages(tmp_path: Path, repo_root: Path) -> None:
    probe = ("import importlib.util, json; spec = importlib.util.find_spec('tokenskip_flows'); "
             "print(json.dumps([importlib.util.find_spec('flows') is None, spec and spec.origin]))")
    no_flows, origin = json.loads(_python(probe, tmp_path))
    assert no_flows, "a top-level `flows` package is importable from site-packages"
    assert origin, "tokenskip_flows is not installed: reinstall (make install)"
    assert Path(origin).name == "__init__.py" and Path(origin).parent.name in {"flows", "tokenskip_flows"}


def test_a_stage_command_imports_neither_the_flows_nor_another_stage(tmp_path: Path) -> None:
    probe = ("import json, sys; from tokenskip.cli import build_app, requested_command; "
             "build_app(['prune']); assert requested_command(['-v', 'run']) == 'run'; "
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('tokenskip', 'prefect')))))")
    loaded = json.loads(_python(probe, tmp_path))
    assert not [m for m in loaded if m.startswith(("tokenskip_flows", "prefect"))], loaded
    stages = {m.split(".")[1] for m in loaded if m.count(".") >= 1 and (PACKAGE / m.split(".")[1]).is_dir()}
    assert stages <= {"core", "prune"}, loaded


def test_a_tool_command_loads_only_its_entry_point_and_each_one_loads(tmp_path: Path) -> None:
    probe = ("import json, sys; from tokenskip.cli import build_app, load_command, tool_commands; "
             "build_app(['run']); loaded = sorted(m for m in sys.modules if m.startswith(('tokenskip', 'prefect'))); "
             "print(json.dumps([loaded, {c: load_command(c).__module__ for c in tool_commands()}]))")
    loaded, modules = json.loads(_python(probe, tmp_path))
    assert "tokenskip_flows.commands" in loaded
    assert not [m for m in loaded if m.startswith(("prefect", "tokenskip_flows.pipeline"))], loaded
    assert modules == {"run": "tokenskip_flows.commands", "restore": "tokenskip_flows.commands",
                       "deploy": "tokenskip_flows.commands",
                       "ablation": "tokenskip_flows.commands", "ui": "tokenskip_flows.ui",
                       "serve": "tokenskip_flows.serve"}
