"""The fine-tuned adapter folder is the same bytes for the same training (dvc.lock's md5)."""

from __future__ import annotations

import json
from pathlib import Path

from tokenskip.finetune.training import sort_target_modules


def test_target_modules_are_written_sorted_whatever_order_peft_used(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"r": 8, "target_modules": ["o_proj", "q_proj", "k_proj"]}), encoding="utf-8")
    second.write_text(json.dumps({"target_modules": ["k_proj", "o_proj", "q_proj"], "r": 8}), encoding="utf-8")
    sort_target_modules(first)
    sort_target_modules(second)
    assert json.loads(first.read_text(encoding="utf-8"))["target_modules"] == ["k_proj", "o_proj", "q_proj"]
    assert first.read_bytes() == second.read_bytes()


def test_a_module_pattern_string_is_left_alone(tmp_path: Path) -> None:
    config = tmp_path / "adapter_config.json"
    config.write_text(json.dumps({"target_modules": ".*proj"}), encoding="utf-8")
    sort_target_modules(config)
    assert json.loads(config.read_text(encoding="utf-8"))["target_modules"] == ".*proj"
