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
DATA_HINT = "run `make data` to restore data/, or put shared/data beside the repository"


def need_data(path: Path, hint: str = DATA_HINT) -> Path:
    """``path`` when it exists; otherwise the test fails under ``CI=true`` (a CI run must not pass
    by skipping) and is skipped, with the reason, elsewhere."""
    if path.exists():
        return path
    message = f"{path} is missing: {hint}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def gsm8k_file(name: str) -> Path:
    """A GSM8K file from the repository's own data/gsm8k, else from ../shared/data/gsm8k."""
    local = REPO_ROOT / "data" / "gsm8k" / name
    return need_data(local if local.exists() else SHARED_GSM8K / name)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (where params.yaml and dvc.yaml live)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny bootstrap Qwen2 model + tokenizer (200 synthetic problems, 30 steps, a few seconds).

    A ``save_pretrained`` folder that ``tokenskip.core.hf.load_causal_lm`` loads; it has a chat
    template, ``<|im_end|>`` as EOS and a pad token. Barely trained: do not expect right answers.
    """
    from tests.fixtures.tiny_models import train_tiny
    from tokenskip.core.params import DEFAULT_INSTRUCTION

    out = tmp_path_factory.mktemp("tiny_model")
    train_tiny(str(out), DEFAULT_INSTRUCTION)
    return out
