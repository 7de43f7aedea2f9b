"""Loading the fine-tuned TokenSkip model, whichever form the finetune stage left.

``models/tokenskip/model/`` is a full Hugging Face causal-LM folder (merged LoRA or a full
fine-tune) and wins when present; otherwise ``models/tokenskip/adapter/`` is a PEFT LoRA
adapter applied on top of the base model recorded in ``models/base``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from tokenskip.errors import TokenSkipError
from tokenskip.modeling import load_causal_lm, load_tokenizer, pick_device, resolve_base_model

MODEL_SUBDIR = "model"
ADAPTER_SUBDIR = "adapter"
ADAPTER_CONFIG = "adapter_config.json"


def finetuned_kind(model_dir: str | Path) -> str:
    """``model`` if a full model folder exists, ``adapter`` if only an adapter, else an error."""
    folder = Path(model_dir)
    if (folder / MODEL_SUBDIR / "config.json").is_file():
        return MODEL_SUBDIR
    if (folder / ADAPTER_SUBDIR / ADAPTER_CONFIG).is_file():
        return ADAPTER_SUBDIR
    raise TokenSkipError(
        f"{folder}: no {MODEL_SUBDIR}/config.json and no {ADAPTER_SUBDIR}/{ADAPTER_CONFIG}; run finetune"
    )


def _attach_adapter(base_model: Any, adapter_dir: Path) -> Any:
    """Apply the PEFT adapter; any mismatch with the base model is one clear error."""
    from peft import PeftModel

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*missing adapter keys.*")
        try:
            model = PeftModel.from_pretrained(base_model, str(adapter_dir), is_trainable=False)
        except (RuntimeError, ValueError, KeyError, UserWarning) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TokenSkipError(
                f"{adapter_dir}: adapter does not match the base model ({first[:200]})"
            ) from None
    return model


def load_finetuned(model_dir: str | Path, base_dir: str | Path, device: str | None = None) -> tuple[Any, Any]:
    """Load (model, tokenizer) of the fine-tuned model in ``model_dir`` (eval mode).

    Prefers ``model_dir/model`` (full folder); else base model from ``base_dir`` plus
    the PEFT adapter in ``model_dir/adapter``. Raises TokenSkipError on a missing folder
    or an adapter that does not fit the base model.
    """
    folder = Path(model_dir)
    device = device or pick_device()
    if finetuned_kind(folder) == MODEL_SUBDIR:
        return load_causal_lm(str(folder / MODEL_SUBDIR), None, device)
    adapter_dir = folder / ADAPTER_SUBDIR
    try:
        json.loads((adapter_dir / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TokenSkipError(f"{adapter_dir / ADAPTER_CONFIG}: not valid JSON ({exc.msg})") from None
    name, revision = resolve_base_model(base_dir)
    base_model, tokenizer = load_causal_lm(name, revision, device)
    if (adapter_dir / "tokenizer_config.json").is_file():
        tokenizer = load_tokenizer(str(adapter_dir))
    model = _attach_adapter(base_model, adapter_dir)
    return model.to(device).eval(), tokenizer
