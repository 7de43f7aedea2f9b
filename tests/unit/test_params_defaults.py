"""One set of defaults: params.yaml lists every key of the params models, and every default in
``tokenskip.core.params`` is params.yaml's value; each profile lists every key too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from tokenskip.core.params import Params, Section, load_params

ROOT = Path(__file__).resolve().parents[2]
PROFILES = sorted(ROOT.glob("profiles/*.yaml"))


def model_keys(model: type[BaseModel] = Params, prefix: str = "") -> Iterator[str]:
    """Dotted path of every key of the params tree (a section's keys, not the section itself)."""
    for name, info in model.model_fields.items():
        key = f"{prefix}{info.alias or name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, Section):
            yield from model_keys(annotation, f"{key}.")
        else:
            yield key


def lookup(tree: Any, dotted: str) -> tuple[bool, Any]:
    """(found, value) of a dotted key in a parsed YAML mapping or a model dump."""
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return False, None
        tree = tree[part]
    return True, tree


def differences(path: Path, compare_defaults: bool = True) -> list[str]:
    """What keeps ``path`` from being the one source of defaults: each key of the params tree it
    does not list, and (``compare_defaults``) each key whose parsed value is not the model's
    default. Values are compared as parsed, so ``evaluate.ratios: null`` counts as prune.ratios."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    keys = list(model_keys())
    found = [f"{key}: not in {path.name}" for key in keys if not lookup(raw, key)[0]]
    if compare_defaults:
        parsed = load_params(path).model_dump(by_alias=True)
        defaults = Params().model_dump(by_alias=True)
        for key in keys:
            value, default = lookup(parsed, key)[1], lookup(defaults, key)[1]
            if value != default:
                found.append(f"{key}: {path.name} has {value!r}, the default is {default!r}")
    return found


def _planted(tmp_path: Path, change: Any) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    change(raw)
    planted = tmp_path / "params.yaml"
    planted.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return planted


def test_the_key_walk_reaches_every_section() -> None:
    keys = set(model_keys())
    assert {"validate.ratio_tolerance", "gates.reference", "base_model.seed", "data.fields"} <= keys
    assert not any(key.startswith("data.fields.") for key in keys)  # null unless data.dataset is jsonl


def test_params_yaml_lists_every_key_and_every_default_is_its_value() -> None:
    assert differences(ROOT / "params.yaml") == []


def test_a_changed_value_is_named(tmp_path: Path) -> None:
    planted = _planted(tmp_path, lambda raw: raw["finetune"].update(lora_rank=32))
    assert differences(planted) == ["finetune.lora_rank: params.yaml has 32, the default is 64"]


def test_a_removed_key_is_named(tmp_path: Path) -> None:
    planted = _planted(tmp_path, lambda raw: raw["gates"].pop("reference"))
    assert differences(planted) == ["gates.reference: not in params.yaml"]


def test_a_removed_section_names_each_of_its_keys(tmp_path: Path) -> None:
    planted = _planted(tmp_path, lambda raw: raw.update(validate={}))
    assert differences(planted) == [
        "validate.ratio_tolerance: not in params.yaml", "validate.ratio_mix_tolerance: not in params.yaml"]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda path: path.stem)
def test_every_profile_parses_and_lists_every_key(profile: Path) -> None:
    """Profiles are full copies of params.yaml for other settings: no key falls back to a default."""
    load_params(profile)
    assert differences(profile, compare_defaults=False) == []


@pytest.mark.parametrize("section, key, value", [
    ("base_model", "packing", "whole"), ("base_model", "digit_loss_weight", 3.0), ("base_model", "ema_decay", 0.99),
    ("finetune", "method", "full"), ("finetune", "sampling", "group_by_length"),
])
def test_options_measured_and_removed_are_unknown_keys(section: str, key: str, value: Any) -> None:
    from tokenskip.core.errors import TokenSkipError
    from tokenskip.core.params import parse_params

    with pytest.raises(TokenSkipError, match=f"^p.yaml: {section}.{key}: unknown key$"):
        parse_params({section: {key: value}}, "p.yaml")
