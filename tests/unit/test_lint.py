"""The code base stays ruff-clean (the project's style contract)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def test_ruff_clean(repo_root: Path) -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff not installed")
    targets = [p for p in ("src", "tests", "flows", "bench", "experiments") if (repo_root / p).exists()]
    result = subprocess.run([ruff, "check", *targets], cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
