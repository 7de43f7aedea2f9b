"""What a finetune checkpoint depends on, by content: the base model's files, the samples, the params.

A checkpoint folder is stamped with :func:`fingerprint`; a run whose inputs hash differently wipes
it instead of resuming. The base model counts by the bytes of its files (weights, tokenizer,
config, ...), not by its path or the files' sizes and mtimes, so another model swapped in at the same
path (``models/base`` is always that path) never resumes a checkpoint trained on the old one. A
``model.json`` pointer to a hub id with no local snapshot counts by name and revision. The same
identity, alone, is the base model fingerprint finetune records in the fine-tuned model's manifest
(:mod:`tokenskip.core.manifest`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tokenskip.core.io import file_sha256
from tokenskip.core.manifest import base_model_identity
from tokenskip.core.params import FinetuneParams

__all__ = ["base_model_identity", "fingerprint"]


def fingerprint(params: FinetuneParams, samples_path: Path, name: str, revision: str | None) -> str:
    """Hash of everything a checkpoint depends on: params, the samples' bytes and the base model."""
    digest = hashlib.sha256()
    digest.update(json.dumps(params.model_dump(), sort_keys=True).encode())
    digest.update(json.dumps(base_model_identity(name, revision), sort_keys=True).encode())
    digest.update(file_sha256(samples_path).encode())
    return digest.hexdigest()[:16]
