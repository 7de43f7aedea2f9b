"""A ``model.json`` pointer recorded on one host resolves on another: the recorded path is used only
where it exists (an adapter-only registry version carries the pointer to every host that loads it)."""

import json
from pathlib import Path

import pytest

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.hf import resolve_base_model


def pointer(folder: Path, **record) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text(json.dumps(record))
    return folder


def test_a_hub_model_recorded_elsewhere_loads_by_its_id(tmp_path: Path) -> None:
    base = pointer(tmp_path / "base", name="Qwen/Qwen2.5-7B-Instruct", revision="main",
                   path="/other-host/hf-cache/models--Qwen/snapshots/abc", source="hub")
    assert resolve_base_model(base) == ("Qwen/Qwen2.5-7B-Instruct", "main")


def test_the_recorded_path_wins_where_it_exists(tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    base = pointer(tmp_path / "base", name="org/model", revision=None, path=str(snapshot), source="hub")
    assert resolve_base_model(base) == (str(snapshot), None)


def test_a_local_model_missing_on_this_host_is_one_clear_error(tmp_path: Path) -> None:
    base = pointer(tmp_path / "base", name="/other-host/models/llama", revision=None,
                   path="/other-host/models/llama", source="local")
    with pytest.raises(TokenSkipError, match=r"model.json: the base model folder /other-host/models/llama is not"):
        resolve_base_model(base)
