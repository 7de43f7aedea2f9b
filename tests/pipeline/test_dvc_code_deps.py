"""DVC notices every code change: in a clone of the committed tree, `dvc status` finds the code
that dvc.lock recorded, and a one-line comment in a module marks exactly the stages whose
folder deps hold it as changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.pipeline.flow_helpers import DVC, run


def code_changes(clone: Path) -> dict[str, set[str]]:
    """Stage -> the code deps (paths under src/) that `dvc status --json` reports as changed."""
    status = json.loads(run([DVC, "status", "--json"], clone).stdout or "{}")
    changed: dict[str, set[str]] = {}
    for target, entries in status.items():
        stage = target.split(":")[-1]
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            paths = {p for p in entry.get("changed deps", {}) if p.startswith("src/")}
            if paths:
                changed.setdefault(stage, set()).update(paths)
    return changed


@pytest.fixture(scope="module")
def clone(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("code-deps") / "repo"
    run(["git", "clone", "-q", str(repo_root), str(dest)], repo_root.parent)
    return dest


def append_comment(path: Path) -> str:
    original = path.read_text(encoding="utf-8")
    path.write_text(original + "# a comment changes the stage's code hash\n", encoding="utf-8")
    return original


def test_dvc_lock_records_the_committed_code(clone: Path) -> None:
    assert code_changes(clone) == {}, "dvc.lock's code deps differ from the committed code: re-run or dvc commit"


def test_a_comment_in_core_changes_every_stage_using_core(clone: Path) -> None:
    answers = clone / "src/tokenskip/core/answers.py"
    original = append_comment(answers)
    try:
        changed = code_changes(clone)
    finally:
        answers.write_text(original, encoding="utf-8")
    assert {"generate", "evaluate", "base-model"} <= set(changed)
    assert all(paths == {"src/tokenskip/core"} for paths in changed.values()), changed


def test_a_comment_in_a_stage_package_changes_that_stage_only(clone: Path) -> None:
    scorers = clone / "src/tokenskip/prune/scorers.py"
    original = append_comment(scorers)
    try:
        changed = code_changes(clone)
    finally:
        scorers.write_text(original, encoding="utf-8")
    assert changed == {"prune": {"src/tokenskip/prune"}}
