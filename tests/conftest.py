"""Test-wide environment: offline hub, no telemetry, quiet progress bars."""

import os
from pathlib import Path

import pytest

for key, value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "DO_NOT_TRACK": "1",
    "TQDM_DISABLE": "1",
}.items():
    os.environ.setdefault(key, value)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_GSM8K = REPO_ROOT.parent / "shared" / "data" / "gsm8k"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (where params.yaml and dvc.yaml live)."""
    return REPO_ROOT
