"""Which base model a fine-tuned model belongs to: finetune records the base model's content
fingerprint in its manifest (``tokenskip.json``, key ``base_fingerprint``); evaluate and register
refuse a base model whose files differ (an adapter on another base model scores nothing, and the
baselines would be another model's).

The fingerprint hashes the bytes of the base model's files (weights, tokenizer, config, ...), not
their path, sizes or mtimes, so the same model copied elsewhere matches and another model swapped in
at the same path does not; a hub id without local files counts by name and revision.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.io import folder_digests

FINGERPRINT_KEY = "base_fingerprint"  # in the fine-tuned model's manifest


def base_model_identity(name: str, revision: str | None) -> dict[str, Any]:
    """A local model folder by its files' content; a hub id without local files by name and revision."""
    folder = Path(name)
    if folder.is_dir():
        return {"files": folder_digests(folder)}
    return {"name": name, "revision": revision}


def base_fingerprint(name: str, revision: str | None) -> str:
    """The base model's content fingerprint: 32 hex digits of a sha256 of its identity."""
    identity = json.dumps(base_model_identity(name, revision), sort_keys=True).encode()
    return hashlib.sha256(identity).hexdigest()[:32]


def recorded_fingerprint(model_dir: str | Path) -> str | None:
    """The base model fingerprint finetune recorded in ``model_dir``'s manifest; None without a
    manifest or in one written before fingerprints were recorded."""
    from tokenskip.core.hf import MANIFEST_FILE

    manifest = Path(model_dir) / MANIFEST_FILE
    if not manifest.is_file():
        return None
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TokenSkipError(f"{manifest}: not valid JSON ({exc})") from None
    value = recorded.get(FINGERPRINT_KEY) if isinstance(recorded, dict) else None
    if value is not None and not isinstance(value, str):
        kind = type(value).__name__
        raise TokenSkipError(f"{manifest}: field '{FINGERPRINT_KEY}' is not text (got {kind})")
    return value


def check_base_model(model_dir: str | Path, base_dir: str | Path) -> None:
    """Refuse ``base_dir`` when its base model is not the one ``model_dir`` was fine-tuned on (one
    line naming both); nothing to check when the manifest records no fingerprint."""
    from tokenskip.core.hf import MANIFEST_FILE, resolve_base_model

    recorded = recorded_fingerprint(model_dir)
    if recorded is None:
        return
    name, revision = resolve_base_model(base_dir)
    found = base_fingerprint(name, revision)
    if found != recorded:
        raise TokenSkipError(
            f"{Path(model_dir) / MANIFEST_FILE}: fine-tuned on the base model with fingerprint {recorded}, "
            f"but {base_dir} holds another one ({name}: {found}); use the base model it was trained on, "
            "or re-run finetune on this one"
        )
