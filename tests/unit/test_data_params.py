"""data params: the four datasets, files from params, the field mapping only for jsonl, and every
params key DVC reads present in params.yaml and in every profile (DVC refuses a missing one)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.params import load_params, parse_params
from tokenskip.core.problems import dataset_file


def test_default_reads_the_synthetic_set_from_the_data_folder() -> None:
    data = parse_params({}).data
    assert (data.dataset, data.train_path, data.test_path, data.fields) == ("synthetic", None, None, None)
    assert dataset_file(data, Path("data"), "test") == Path("data/synthetic/test.jsonl")


def test_configured_paths_win() -> None:
    data = parse_params({"data": {"dataset": "math", "test_path": "data/math500/test.jsonl"}}).data
    assert dataset_file(data, Path("elsewhere"), "test") == Path("data/math500/test.jsonl")
    assert dataset_file(data, Path("data"), "train") == Path("data/math/train.jsonl")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"dataset": "jsonl"}, "params.yaml: data.fields: Value error, required when data.dataset is jsonl"),
        ({"dataset": "math", "fields": {"question": "q"}}, "data.fields: Value error, required when "
                                                           "data.dataset is jsonl, and only then (it is math)"),
        ({"dataset": "jsonl", "fields": {"prompt": "q"}}, "params.yaml: data.fields.prompt: unknown key"),
        ({"dataset": "csv"}, "data.dataset: Input should be 'synthetic', 'gsm8k', 'math' or 'jsonl'"),
    ],
)
def test_bad_data_params_are_one_line_naming_the_key(data: dict, expected: str) -> None:
    with pytest.raises(TokenSkipError) as info:
        parse_params({"data": data})
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_math500_profile_holds_the_papers_math_setting(repo_root: Path) -> None:
    params = load_params(repo_root / "profiles" / "paper-gpu-math500.yaml")
    assert params.data.dataset == "math"
    assert params.generate.max_new_tokens == params.evaluate.max_new_tokens == 1024
    assert params.model.name == "Qwen/Qwen2.5-7B-Instruct"
    for path in (params.data.train_path, params.data.test_path):
        assert path and Path(path).parts[0] == "data", "DVC tracks the data/ folder only"


def _dvc_param_keys(repo_root: Path) -> set[str]:
    stages = yaml.safe_load((repo_root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return {key for stage in stages.values() for key in stage.get("params", []) if isinstance(key, str)}


def _has(tree: dict, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


ROOT = Path(__file__).resolve().parents[2]
PARAMS_FILES = ["params.yaml", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "profiles").glob("*.yaml"))]


@pytest.mark.parametrize("name", PARAMS_FILES)
def test_every_param_dvc_reads_is_in_the_file(repo_root: Path, name: str) -> None:
    """``cp profiles/<name>.yaml params.yaml && make run`` must not stop at a missing key."""
    raw = yaml.safe_load((repo_root / name).read_text(encoding="utf-8"))
    missing = sorted(k for k in _dvc_param_keys(repo_root) if not _has(raw, k))
    assert missing == [], f"{name} lacks {missing}: dvc repro would refuse to run"
