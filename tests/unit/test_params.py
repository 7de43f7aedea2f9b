"""params.yaml loader: valid profiles parse, bad values fail with the dotted key path."""

from pathlib import Path

import pytest
import yaml

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.params import load_params, parse_params


def test_default_params_parse(repo_root: Path) -> None:
    params = load_params(repo_root / "params.yaml")
    assert params.model.name == "bootstrap"
    assert params.prune.ratios == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert params.validate_.ratio_tolerance == 0.05


def test_paper_profile_parses(repo_root: Path) -> None:
    params = load_params(repo_root / "profiles" / "paper-gpu.yaml")
    assert params.data.dataset == "gsm8k"
    assert params.model.name == "Qwen/Qwen2.5-7B-Instruct"
    assert params.prune.scorer == "llmlingua2"
    ft = params.finetune
    assert (ft.lora_rank, ft.lora_alpha, ft.target_modules, ft.full_cot_loss_weight) == (
        8, 16, "all-linear", 1.0)
    assert (ft.learning_rate, ft.epochs, ft.batch_size, ft.gradient_accumulation_steps) == (
        5e-5, 3, 1, 8)
    assert params.generate.max_new_tokens == 512


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"prune": {"ratios": [0.5, 1.5]}}, "prune.ratios.1: Input should be less than or equal to 1"),
        ({"prune": {"ratios": [0.0]}}, "prune.ratios.0: Input should be greater than 0"),
        ({"prune": {"ratios": [0.5, 0.5]}}, "prune.ratios: Value error, duplicate ratios"),
        ({"prune": {"ratios": []}}, "prune.ratios: Value error, must list at least one ratio"),
        ({"gates": {"max_accuracy_drop": -0.1}}, "gates.max_accuracy_drop: Input should be greater than or equal to 0"),
        ({"finetune": {"lora_rank": "eight"}}, "finetune.lora_rank: Input should be a valid integer"),
        ({"finetune": {"batch_size": 16, "num_processes": 3}},
         "finetune: Value error, batch_size (16) must be a multiple of num_processes (3)"),
        ({"finetune": {"num_processes": 0}}, "finetune.num_processes: Input should be greater than 0"),
        ({"base_model": {"batch_size": 9, "num_processes": 2}},
         "base_model: Value error, batch_size (9) must be a multiple of num_processes (2)"),
        ({"prune": {"scorer": "magic"}}, "prune.scorer: Input should be 'self-information', 'llmlingua2' or 'random'"),
        ({"model": {"nmae": "x"}}, "model.nmae: unknown key"),
        ({"validate": {"ratio_tolerance": 2}}, "validate.ratio_tolerance: Input should be less than or equal to 1"),
        ({"nonsense": {}}, "nonsense: unknown key"),
        ({"flow": {"cron": "every night"}}, "flow.cron: Value error, must be a 5-field cron expression"),
        ({"flow": {"timezone": "Mars/Olympus"}}, "flow.timezone: Value error, must be an IANA time zone"),
    ],
)
def test_bad_values_name_the_key_and_range(raw: dict, expected: str) -> None:
    with pytest.raises(TokenSkipError) as info:
        parse_params(raw, "p.yaml")
    message = str(info.value)
    assert message.startswith("p.yaml: ")
    assert expected in message
    assert "\n" not in message


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(TokenSkipError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(TokenSkipError, match="not valid YAML"):
        load_params(bad)
    bad.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(TokenSkipError, match="top level must be a mapping"):
        load_params(bad)


def test_evaluate_ratios_default_to_the_trained_ratios(repo_root: Path) -> None:
    assert parse_params({"prune": {"ratios": [0.6, 0.8]}}).evaluate.ratios == [0.6, 0.8]
    assert parse_params({"prune": {"ratios": [0.8, 0.6]}, "evaluate": {"ratios": None}}).evaluate.ratios == [0.6, 0.8]
    assert parse_params({"prune": {"ratios": [0.6, 0.8]}, "evaluate": {"ratios": [0.8]}}).evaluate.ratios == [0.8]
    assert parse_params({}).evaluate.ratios == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert load_params(repo_root / "params.yaml").evaluate.ratios == [0.5, 0.6, 0.7, 0.8, 0.9]
