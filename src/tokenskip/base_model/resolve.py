"""A named base model (local folder or hub id): check it and record it, training nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.hf import load_tokenizer


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


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
    """Snapshot a hub id: from the local cache when huggingface_hub is offline, else from the hub.

    An id or revision the hub does not have, or (offline) one that is not in the local cache, is
    one TokenSkipError (exit code 2): no later stage could load it. Online, a download that fails
    for another reason (the network) records the id for the later stages to load."""
    from huggingface_hub import is_offline_mode, snapshot_download
    from huggingface_hub.errors import HFValidationError, RepositoryNotFoundError, RevisionNotFoundError

    offline = is_offline_mode()
    record: dict[str, Any] = {"name": name, "revision": revision, "path": None, "source": "hub"}
    label = f"{name}@{revision}" if revision else name
    try:
        path = snapshot_download(name, revision=revision, local_files_only=offline)
    except (RepositoryNotFoundError, RevisionNotFoundError, HFValidationError) as exc:
        why = _first_line(exc)
        raise TokenSkipError(f"model.name: {label}: not a model on the Hugging Face hub ({why})") from None
    except Exception as exc:
        if offline:
            raise TokenSkipError(
                f"model.name: {label}: not in the local Hugging Face cache, and the hub is offline "
                "(HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE): download it first (hf download "
                f"{name}), or name a local model folder"
            ) from None
        record["snapshot_error"] = _first_line(exc)  # online, the network failed: later stages load the id
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
