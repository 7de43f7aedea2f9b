"""A named base model (local folder or hub id): check it and record it, training nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.hf import load_tokenizer


def resolve_local(folder: Path) -> dict[str, Any]:
    """A local model folder must have config.json and a tokenizer with a chat template."""
    if not (folder / "config.json").is_file():
        raise TokenSkipError(f"model.name: {folder}: no config.json (not a Hugging Face model folder)")
    try:
        load_tokenizer(str(folder))
    except TokenSkipError as exc:
        raise TokenSkipError(f"model.name: {exc}") from None
    return {"name": str(folder), "revision": None, "path": str(folder.resolve()), "source": "local"}


def resolve_hub(name: str, revision: str | None) -> dict[str, Any]:
    """Snapshot a hub id where the network allows; else record it (and a cached copy, if any)."""
    from huggingface_hub import is_offline_mode, snapshot_download

    record: dict[str, Any] = {"name": name, "revision": revision, "path": None, "source": "hub"}
    try:
        path = snapshot_download(name, revision=revision, local_files_only=is_offline_mode())
    except Exception as exc:  # offline, unknown id, no cache: record the id, later stages load it
        record["snapshot_error"] = str(exc).splitlines()[0][:300]
        return record
    record["path"] = path
    record["snapshot_revision"] = Path(path).name
    return record


def resolve_named_model(name: str, revision: str | None) -> dict[str, Any]:
    """The ``model.json`` record of ``model.name`` (a local folder or a hub id)."""
    folder = Path(name).expanduser()
    looks_local = folder.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1
    if looks_local:
        if not folder.is_dir():
            raise TokenSkipError(f"model.name: {name}: no such model folder")
        return resolve_local(folder)
    return resolve_hub(name, revision)
