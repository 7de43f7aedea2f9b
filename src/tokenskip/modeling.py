"""Loading the target model like any Hugging Face causal LM, from one place.

The ``base-model`` stage leaves either a model folder (bootstrap) or a pointer file
``model.json`` (``{"name", "revision"}``) in its output folder; every later stage
calls :func:`resolve_base_model` on that folder and :func:`load_causal_lm` on the result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokenskip.errors import TokenSkipError

POINTER_FILE = "model.json"


def pick_device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_base_model(base_dir: str | Path) -> tuple[str, str | None]:
    """Return (name or path, revision) of the base model recorded in ``base_dir``."""
    folder = Path(base_dir)
    if (folder / "config.json").is_file():
        return str(folder), None
    pointer = folder / POINTER_FILE
    if not pointer.is_file():
        raise TokenSkipError(f"{folder}: no model (config.json) and no {POINTER_FILE}; run base-model")
    record = json.loads(pointer.read_text(encoding="utf-8"))
    if not record.get("name"):
        raise TokenSkipError(f"{pointer}: field 'name' is missing")
    return record.get("path") or record["name"], record.get("revision")


def load_tokenizer(name: str, revision: str | None = None) -> Any:
    """AutoTokenizer with left padding and a pad token; it must have a chat template."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name, revision=revision, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise TokenSkipError(f"{name}: cannot load a tokenizer ({str(exc).splitlines()[0]})") from None
    if not getattr(tokenizer, "chat_template", None):
        raise TokenSkipError(f"{name}: tokenizer has no chat_template")
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(name: str, revision: str | None = None, device: str | None = None) -> tuple[Any, Any]:
    """Load (model, tokenizer): bf16 on CUDA, fp32 on CPU, eval mode, no remote code."""
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(name, revision)
    device = device or pick_device()
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(
            name, revision=revision, dtype=dtype, trust_remote_code=False
        )
    except (OSError, ValueError) as exc:
        raise TokenSkipError(f"{name}: cannot load a causal LM ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval(), tokenizer
