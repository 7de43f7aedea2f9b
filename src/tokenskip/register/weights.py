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
:func:`finetuned_layout` turns a version's artifacts into finetune's folder layout (the served
pyfunc loads it; ``tokenskip serve`` serves it behind the OpenAI API); :func:`download_version`
fetches a version (``models:/name@alias``) without loading it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenskip.core.hf import ADAPTER_SUBDIR, MODEL_SUBDIR, POINTER_FILE, finetuned_kind

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


@dataclass(frozen=True)
class FinetunedLayout:
    """A version's weights as finetune lays them out: ``model_dir`` holds ``model/`` or
    ``adapter/``; ``base_dir`` is the base model (folder or ``model.json``; empty for a merged
    model); ``temporary`` a folder of links to remove when done (None when none was needed)."""

    model_dir: Path
    base_dir: str
    temporary: Path | None = None


def finetuned_layout(
    artifacts: dict[str, str], weights: dict[str, Any], scratch: Path | None = None
) -> FinetunedLayout:
    """The finetune layout of a version's pyfunc ``artifacts`` (key -> local path) once its shared
    ``weights`` URIs are downloaded (:func:`resolve_weights`). MLflow copies an artifact to
    ``artifacts/<folder name>``; one renamed on a collision is linked back under its key (in a
    temporary folder, under ``scratch`` when given)."""
    resolved = resolve_weights(artifacts, weights)
    key = MODEL_SUBDIR if MODEL_SUBDIR in resolved else ADAPTER_SUBDIR
    source = Path(resolved[key])
    if source.name == key:
        return FinetunedLayout(source.parent, resolved.get(BASE_ARTIFACT, ""))
    temporary = Path(tempfile.mkdtemp(prefix="tokenskip-pyfunc-", dir=scratch))
    (temporary / key).symlink_to(source.resolve(), target_is_directory=True)
    return FinetunedLayout(temporary, resolved.get(BASE_ARTIFACT, ""), temporary)


@dataclass(frozen=True)
class VersionFiles:
    """A downloaded version: its folder, pyfunc artifacts (key -> local path) and model_config."""

    path: Path
    artifacts: dict[str, str]
    config: dict[str, Any]


def download_version(model_uri: str, dst: str | Path) -> VersionFiles:
    """Download the pyfunc model ``model_uri`` (``models:/name@alias``, ``runs:/...``) into ``dst``
    without loading it (the shared weights stay URIs in ``config["weights"]``)."""
    import mlflow.artifacts
    from mlflow.models import Model
    from mlflow.models.model import MODEL_CONFIG
    from mlflow.pyfunc import FLAVOR_NAME

    path = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(dst)))
    flavor = Model.load(str(path)).flavors.get(FLAVOR_NAME, {})
    artifacts = {key: str(path / info["path"]) for key, info in (flavor.get("artifacts") or {}).items()}
    return VersionFiles(path, artifacts, dict(flavor.get(MODEL_CONFIG) or {}))
