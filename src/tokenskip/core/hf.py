"""Hugging Face loading from one place: device, tokenizer, causal LM, the base-model pointer and
the fine-tuned model, plus the names of the on-disk layouts their writers and readers share.

The ``base-model`` stage leaves either a model folder (bootstrap) or a pointer file
``model.json`` (``{"name", "revision"}``) in its output folder; every later stage
calls :func:`resolve_base_model` on that folder and :func:`load_causal_lm` on the result.

The ``finetune`` stage leaves ``model/`` (a full Hugging Face causal-LM folder: merged LoRA or a
full fine-tune), and/or ``adapter/`` (a PEFT LoRA adapter over the base model), and the manifest
``tokenskip.json``. :func:`load_finetuned` prefers ``model/``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from tokenskip.core.errors import TokenSkipError

POINTER_FILE = "model.json"  # base-model's record of a named model: {"name", "revision", "path", "source"}
MODEL_SUBDIR = "model"  # finetune: full causal-LM folder (merged LoRA or full fine-tune)
ADAPTER_SUBDIR = "adapter"  # finetune: PEFT LoRA adapter over the base model
ADAPTER_CONFIG = "adapter_config.json"
MANIFEST_FILE = "tokenskip.json"  # finetune: {"method", "base", "revision", "ratios", "steps"}
TOKENIZER_PROBE = "Tom has 3 apples and buys 12 more, so he has 15."  # must encode and decode back
MAX_SANE_CONTEXT = 10_000_000  # a larger tokenizer model_max_length means "not set" (1e30 in transformers)


def runtime_environment() -> dict[str, Any]:
    """What can make two machines' results differ although code, data and params are equal: the
    torch and transformers versions, the CPU's SIMD capability that torch dispatches kernels to
    (e.g. AVX2 vs AVX512 changes float summation order), MKL's pinned code path (``MKL_CBWR``,
    unset: chosen by CPU), the architecture and Python."""
    import os
    import platform

    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl_cbwr": os.environ.get("MKL_CBWR"),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }


def pick_device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_base_model(base_dir: str | Path) -> tuple[str, str | None]:
    """Return (name or path, revision) of the base model recorded in ``base_dir``.

    A ``model.json`` pointer's ``path`` is the recording host's folder: it is used only where it
    exists, so a registry version carrying the pointer loads on any host (by the hub id).
    """
    folder = Path(base_dir)
    if (folder / "config.json").is_file():
        return str(folder), None
    pointer = folder / POINTER_FILE
    if not pointer.is_file():
        raise TokenSkipError(f"{folder}: no model (config.json) and no {POINTER_FILE}; run base-model")
    record = json.loads(pointer.read_text(encoding="utf-8"))
    if not record.get("name"):
        raise TokenSkipError(f"{pointer}: field 'name' is missing")
    path = record.get("path")
    if path and Path(path).is_dir():  # this host's copy (a local folder, or the hub cache snapshot)
        return path, record.get("revision")
    if record.get("source") == "local" and not Path(record["name"]).is_dir():
        raise TokenSkipError(
            f"{pointer}: the base model folder {record['name']} is not on this host (recorded path "
            f"{path}); copy it here or name the model by its hub id"
        )
    return record["name"], record.get("revision")  # a hub id: loaded from this host's cache or the hub


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when the message is empty."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _squeeze(text: str) -> str:
    """``text`` without whitespace, case-folded: what a tokenizer round trip must preserve."""
    return "".join(text.split()).casefold()


def _matches(pieces: list[str], text: str) -> bool:
    """Whether ``text`` is ``pieces`` joined by wildcards (any text, unknown tokens stand for it)."""
    if len(pieces) == 1:
        return pieces[0] == text
    first, *middle, last = pieces
    if len(first) + len(last) > len(text) or not text.startswith(first) or not text.endswith(last):
        return False
    position, end = len(first), len(text) - len(last)
    for piece in middle:  # leftmost match of each piece is optimal for wildcard patterns
        found = text.find(piece, position, end)
        if found < 0:
            return False
        position = found + len(piece)
    return True


def check_tokenizer(name: str, tokenizer: Any) -> None:
    """Refuse a tokenizer that is not real: no ordinary (non-special) token, or a sample text that
    encodes to nothing or does not decode back (modulo whitespace and case; an unknown token may
    stand for any text). Transformers silently builds such an empty tokenizer from a model folder
    that lacks its tokenizer files."""
    specials = set(tokenizer.all_special_tokens)
    if not any(token not in specials for token in tokenizer.get_vocab()):
        raise TokenSkipError(
            f"{name}: tokenizer is empty (its vocabulary holds {len(tokenizer)} special token(s) only): "
            "its tokenizer files "
            "(tokenizer.json, tokenizer_config.json, vocabulary) are missing or broken"
        )
    ids = tokenizer(TOKENIZER_PROBE, add_special_tokens=False)["input_ids"]
    decoded = tokenizer.decode(ids, skip_special_tokens=False) if ids else ""
    unk = _squeeze(tokenizer.unk_token or "")
    pieces = _squeeze(decoded).split(unk) if unk else [_squeeze(decoded)]
    if not ids or not _matches(pieces, _squeeze(TOKENIZER_PROBE)):
        raise TokenSkipError(
            f"{name}: tokenizer is broken: the sample text {TOKENIZER_PROBE!r} encodes to {len(ids)} tokens "
            f"that decode to {decoded[:80]!r}; its tokenizer files are missing or broken"
        )


def load_tokenizer(name: str, revision: str | None = None) -> Any:
    """AutoTokenizer with left padding and a pad token; it must be real (:func:`check_tokenizer`)
    and have a chat template."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name, revision=revision, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise TokenSkipError(f"{name}: cannot load a tokenizer ({_first_line(exc)})") from None
    check_tokenizer(name, tokenizer)
    if not getattr(tokenizer, "chat_template", None):
        raise TokenSkipError(f"{name}: tokenizer has no chat_template")
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(name: str, revision: str | None = None, device: str | None = None) -> tuple[Any, Any]:
    """Load (model, tokenizer): bf16 on CUDA, fp32 on CPU, eval mode, no remote code.

    Missing, truncated or corrupt weights are one TokenSkipError naming the model folder."""
    import torch
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(name, revision)
    device = device or pick_device()
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(
            name, revision=revision, dtype=dtype, trust_remote_code=False
        )
    except SafetensorError as exc:
        raise TokenSkipError(
            f"{name}: cannot load a causal LM: its weights file is truncated or corrupt ({_first_line(exc)})"
        ) from None
    except (OSError, ValueError, RuntimeError, EOFError) as exc:
        raise TokenSkipError(f"{name}: cannot load a causal LM ({_first_line(exc)})") from None
    return model.to(device).eval(), tokenizer


def context_length(config: Any, tokenizer: Any) -> int | None:
    """The model's context in tokens: ``max_position_embeddings`` (or ``n_positions``) of its
    config, else the tokenizer's ``model_max_length`` when set; None when neither is known."""
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for attribute in ("max_position_embeddings", "n_positions"):
        value = getattr(text_config, attribute, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < MAX_SANE_CONTEXT else None


def load_context_length(name: str, revision: str | None, tokenizer: Any) -> int | None:
    """:func:`context_length` of the model ``name`` from its config alone (no weights loaded)."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(name, revision=revision, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise TokenSkipError(f"{name}: cannot load the model config ({_first_line(exc)})") from None
    return context_length(config, tokenizer)


def load_generation_config(name: str, revision: str | None) -> Any | None:
    """The model's ``generation_config.json`` as a GenerationConfig, or None when it has none."""
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(name, revision=revision)
    except OSError:
        return None


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
    from safetensors import SafetensorError

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*missing adapter keys.*")
        try:
            model = PeftModel.from_pretrained(base_model, str(adapter_dir), is_trainable=False)
        except SafetensorError as exc:
            raise TokenSkipError(
                f"{adapter_dir}: adapter weights file is truncated or corrupt ({_first_line(exc)})"
            ) from None
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


def manifest_ratios(model_dir: str | Path) -> list[float] | None:
    """The ratios recorded in the fine-tuned model's manifest, or None without a manifest."""
    manifest = Path(model_dir) / MANIFEST_FILE
    if not manifest.is_file():
        return None
    try:
        ratios = json.loads(manifest.read_text(encoding="utf-8")).get("ratios", [])
    except json.JSONDecodeError as exc:
        raise TokenSkipError(f"{manifest}: not valid JSON ({exc.msg})") from None
    return [float(r) for r in ratios]


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts; tied weights are counted once."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def eos_token_ids(tokenizer: Any, generation_config: Any | None) -> list[int]:
    """The ids that end a generation: the tokenizer's EOS and those of the generation config."""
    configured = getattr(generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        configured = [configured]
    ids: set[Any] = {tokenizer.eos_token_id, *(configured or [])}
    ids.discard(None)
    return sorted(ids)
