"""A fresh clone of the committed HEAD, ready for ``dvc repro`` (shared by the clone experiments).

``experiments/reproduce.py`` and ``experiments/quality.py`` both run the pipeline in a temporary
clone with the clone's own code: the venv's ``dvc`` and ``tokenskip`` first on PATH, the clone's
``src`` on PYTHONPATH, the hub offline, and the data pulled from this repo's DVC remote.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc")


def clone_head(clone: Path, share_cache: bool = False) -> dict[str, str]:
    """``git clone`` HEAD into ``clone`` and pull its data; return the environment to run it with.

    ``share_cache``: use this repo's DVC cache, so stages that already ran here come from the
    run-cache (``reproduce`` leaves it off: every stage must run from scratch).
    """
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(clone / "src"), str(clone)]), "TQDM_DISABLE": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    if share_cache:
        cache = str(ROOT / ".dvc" / "cache")
        subprocess.run([DVC, "cache", "dir", "--local", cache], cwd=clone, check=True, env=env)
    subprocess.run([DVC, "pull", "-q", "data.dvc"], cwd=clone, check=True, env=env)
    return env
