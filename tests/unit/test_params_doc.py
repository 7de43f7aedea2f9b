"""docs/params.md documents every key of params.yaml's pydantic models, no other, with the defaults
of params.yaml (the one source of defaults)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tokenskip.core.params import Params

ROW = re.compile(r"^\| `(?P<key>[^`]+)` \| `(?P<default>[^`]*)` \|")


def model_keys() -> dict[str, list[str]]:
    """Section -> its keys, as params.yaml writes them (aliases), from the pydantic models."""
    keys = {}
    for name, field in Params.model_fields.items():
        section = field.annotation
        keys[field.alias or name] = [f.alias or k for k, f in section.model_fields.items()]
    return keys


def documented(text: str) -> dict[str, dict[str, str]]:
    """Section -> key -> documented default, from the page's `## section` tables."""
    found: dict[str, dict[str, str]] = {}
    section = None
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
            found.setdefault(section, {})
        elif section and (match := ROW.match(line)):
            found[section][match["key"]] = match["default"]
    return found


def written(value: Any) -> str:
    """How the page writes a default: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def params_doc_problems(doc: Path, params_file: Path) -> list[str]:
    """Every key missing from the page, documented without existing, or with another default."""
    values = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    pages = documented(doc.read_text(encoding="utf-8"))
    problems = []
    for section, keys in model_keys().items():
        page = pages.get(section, {})
        problems += [f"{section}.{key}: not documented" for key in keys if key not in page]
        problems += [f"{section}.{key}: documented, not a param" for key in page if key not in keys]
        problems += [f"{section}.{key}: documented default {page[key]!r}, params.yaml "
                     f"{written(values[section][key])!r}" for key in keys
                     if key in page and page[key] != written(values[section][key])]
    problems += [f"## {section}: not a params section" for section in pages if section not in model_keys()]
    return problems


def test_every_param_is_documented_with_its_default(repo_root: Path) -> None:
    assert params_doc_problems(repo_root / "docs" / "params.md", repo_root / "params.yaml") == []


def test_a_planted_key_a_missing_key_and_a_stale_default_are_caught(repo_root: Path, tmp_path: Path) -> None:
    text = (repo_root / "docs" / "params.md").read_text(encoding="utf-8")
    planted = (text.replace("| `lora_dropout` |", "| `lora_dropout_rate` |")
               .replace("| `max_accuracy_drop` | `0.05` |", "| `max_accuracy_drop` | `0.1` |"))
    planted = re.sub(r"^\| `merge` \|.*\n", "", planted, flags=re.M)
    (tmp_path / "params.md").write_text(planted, encoding="utf-8")
    assert params_doc_problems(tmp_path / "params.md", repo_root / "params.yaml") == [
        "finetune.lora_dropout: not documented", "finetune.merge: not documented",
        "finetune.lora_dropout_rate: documented, not a param",
        "gates.max_accuracy_drop: documented default '0.1', params.yaml '0.05'"]
