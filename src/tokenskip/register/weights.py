"""Weights shared by every registered version of one pipeline run, logged once and referenced.

A pipeline run registers one version per ratio, and every version runs the same weights: only
the default ratio differs. The weights are therefore logged once, as artifacts of the run's
``finetune`` child run, and each version's pyfunc model holds their ``runs:/`` URIs
(``model_config["weights"]``) instead of a copy:

- ``model``: the merged (or fully fine-tuned) model folder, when finetune wrote one;
- ``base``: the base model folder under a LoRA adapter, when the base is a local folder (the
  bootstrap model, or ``model.name`` naming a folder). A base named by hub id is not logged: the
  version carries ``model.json`` (id and revision), resolved through the Hugging Face cache.

The adapter itself (megabytes) travels inside each version. At load time :func:`fetch_weights`
downloads a URI once into a cache folder (``TOKENSKIP_WEIGHTS_CACHE``, default
``~/.cache/tokenskip/weights``) keyed by the URI, so any process that reaches the same tracking
store loads the version, on any host, without the registering machine's files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenskip.core.hf import MODEL_SUBDIR, POINTER_FILE, finetuned_kind

if TYPE_CHECKING:  # the served model imports this module; it needs no tracking client
    from tokenskip.tracking.store import Tracking

CACHE_ENV = "TOKENSKIP_WEIGHTS_CACHE"
BASE_ARTIFACT = "base"


def local_base_folder(base_dir: str | Path) -> Path | None:
    """The folder holding the base model's weights when it is local, else None (a hub id).

    ``base_dir`` is base-model's output: the bootstrap model folder itself, or ``model.json``
    whose ``source`` is ``local`` (the folder is ``path``) or ``hub``.
    """
    folder = Path(base_dir)
    if (folder / "config.json").is_file():
        return folder
    pointer = folder / POINTER_FILE
    if not pointer.is_file():
        return None
    record = json.loads(pointer.read_text(encoding="utf-8"))
    path = record.get("path")
    if record.get("source") == "local" and path and Path(path).is_dir():
        return Path(path)
    return None


def _log_folder_once(tracking: Tracking, run_id: str, folder: Path, name: str) -> str:
    """Upload ``folder``'s files under artifact path ``name`` unless it is there; its ``runs:/`` URI."""
    listed = tracking.call("list artifacts", lambda: tracking.client.list_artifacts(run_id))
    if not any(item.path == name for item in listed):
        tracking.call(f"upload {folder}",
                      lambda: tracking.client.log_artifacts(run_id, str(folder), name))
    return f"runs:/{run_id}/{name}"


def shared_weights(
    tracking: Tracking, run_id: str, model_dir: str | Path, base_dir: str | Path
) -> dict[str, str]:
    """Log the run's shared weights to run ``run_id`` (once); return ``{"model" | "base": URI}``."""
    folder = Path(model_dir)
    if finetuned_kind(folder) == MODEL_SUBDIR:
        return {MODEL_SUBDIR: _log_folder_once(tracking, run_id, folder / MODEL_SUBDIR, MODEL_SUBDIR)}
    base = local_base_folder(base_dir)
    if base is None:
        return {}
    return {BASE_ARTIFACT: _log_folder_once(tracking, run_id, base, BASE_ARTIFACT)}


def cache_root() -> Path:
    """Where downloaded weights are kept: ``$TOKENSKIP_WEIGHTS_CACHE`` or ``~/.cache/tokenskip/weights``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "tokenskip" / "weights"


def fetch_weights(uri: str) -> Path:
    """The local folder of a shared-weights URI, downloaded once per URI (an atomic rename makes a
    cut-short download invisible; a concurrent loader that loses the race uses the winner's)."""
    import mlflow.artifacts

    name = uri.rstrip("/").rsplit("/", 1)[-1]
    target = cache_root() / hashlib.sha256(uri.encode()).hexdigest()[:24]
    if (target / name).is_dir():
        return target / name
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    try:
        mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(staging))
        try:
            staging.rename(target)
        except OSError:  # another process finished first
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target / name


def resolve_weights(artifacts: dict[str, str], weights: dict[str, Any]) -> dict[str, str]:
    """The version's artifacts with each shared-weights URI replaced by its local folder."""
    return {**artifacts, **{key: str(fetch_weights(uri)) for key, uri in weights.items()}}
