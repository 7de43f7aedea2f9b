"""The smoke run shared by the real-model tests: `dvc repro` of profiles/hf-smoke.yaml (two tiny
local models, GSM8K, llmlingua2) in a copy of this working copy, tracked on the session's MLflow
server. Session-scoped: built once (~100 s on 2 cores); a test that changes the clone (moves it,
runs experiments in it) works on its own copy (:func:`copy_clone`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.fixtures.smoke_models import build_smoke_models
from tests.pipeline.flow_helpers import DVC, clone_env, run


def copy_worktree(repo_root: Path, dest: Path) -> Path:
    """A clone of this working copy as it is (committed files plus uncommitted edits)."""
    run(["git", "clone", "-q", str(repo_root), str(dest)], repo_root.parent)
    changed = run(["git", "ls-files", "-z", "--modified", "--others", "--exclude-standard"], repo_root)
    for relative in filter(None, changed.stdout.split("\0")):
        source, target = repo_root / relative, dest / relative
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        elif target.exists():  # deleted here
            target.unlink()
    return dest


def copy_clone(clone: Path, dest: Path) -> Path:
    """A private copy of the smoke clone (its .git and .dvc come along, so git and dvc work there)."""
    shutil.copytree(clone, dest, symlinks=True)
    return dest


@pytest.fixture(scope="session")
def smoke_run(repo_root: Path, mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`dvc repro` of the smoke profile in a copy of this working copy, tracked on the fixture's
    MLflow server; returns the clone, its reports and the tracking URI. Do not change the clone."""
    clone = copy_worktree(repo_root, tmp_path_factory.mktemp("real-model") / "work")
    run([DVC, "pull", "-q", "data.dvc"], clone)
    built = build_smoke_models(clone / "models" / "smoke", clone / "data" / "gsm8k")
    assert built["final_loss"] < 0.05, built  # the Llama recites its problems
    shutil.copy(clone / "profiles" / "hf-smoke.yaml", clone / "params.yaml")
    env = {**clone_env(clone), "MLFLOW_TRACKING_URI": mlflow_server}
    run([DVC, "repro"], clone, env=env)
    reports = {p.stem: json.loads(p.read_text()) for p in (clone / "reports").glob("*.json")}
    return {"clone": clone, "reports": reports, "uri": mlflow_server}
