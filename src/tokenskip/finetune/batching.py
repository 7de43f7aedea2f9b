"""Training batches: padding-free (one process) or right-padded (data-parallel processes).

A random batch of mixed ratios is about a quarter padding when each sample gets a padded row.
Padding-free, transformers' ``DataCollatorWithFlattening`` lays the batch's samples end to end in
one row, ``position_ids`` restart at 0 for every sample, the sample bounds go along as
``cu_seq_lens_q/k``, and attention runs causally within each sample, so every sample sees exactly
what it sees alone and the loss is the padded batch's: the same label tokens (the first token of a
sample is a prompt token, labelled -100, so nothing is predicted across a boundary), the same
``num_items_in_batch``. Only the padding's compute is gone (README: Params). The attention within
each sample is transformers' own varlen path (``flash_attention_2``, from the flash-attn package
or the kernels package) where CUDA, a half-precision model and such a kernel are there; elsewhere
``varlen_causal_attention``, one SDPA call per sample, registered with ``AttentionInterface`` (stock
SDPA over a packed row builds a dense block mask: about 6x slower on the CPU). The collator adds
one thing of its own: the per-token loss weights (``SAMPLE_WEIGHT``) when samples have weights.
Under data-parallel processes the global batch is split by rows, so batches stay padded there.
"""

from __future__ import annotations

import sys
from typing import Any

IGNORE_INDEX = -100  # the label of a token outside the loss (prompt, padding)
SAMPLE_WEIGHT = "sample_weight"  # the batch key of per-token loss weights (weighting.py pops it)
VARLEN_ATTENTION = "tokenskip_varlen_sdpa"  # the attention implementation's registered name
VARLEN_KERNEL = "flash_attention_2"  # transformers' own varlen attention, where CUDA has a kernel

PADDING_FREE, PADDED = "padding-free", "padded"


def _padded(batch: list[dict[str, Any]], pad_id: int) -> dict[str, list[list[Any]]]:
    """One row per sample, right-padded to the longest (labels -100 and weight 0 on padding)."""
    width = max(len(item["input_ids"]) for item in batch)
    rows: dict[str, list[list[Any]]] = {"input_ids": [], "labels": [], SAMPLE_WEIGHT: []}
    for item in batch:
        n, pad = len(item["input_ids"]), width - len(item["input_ids"])
        rows["input_ids"].append(item["input_ids"] + [pad_id] * pad)
        rows["labels"].append(item["labels"] + [IGNORE_INDEX] * pad)
        rows[SAMPLE_WEIGHT].append([item.get(SAMPLE_WEIGHT, 1.0)] * n + [0.0] * pad)
    return rows


def collate(pad_id: int, layout: str = PADDED) -> Any:
    """A collator for ``layout`` (``padding-free`` or ``padded``). Padding-free batches come from
    transformers' ``DataCollatorWithFlattening`` (``input_ids``, ``labels`` with -100 at each
    sample's first token, ``position_ids``, ``cu_seq_lens_q/k``, ``max_length_q/k``). Padded
    batches carry no attention mask: the padding follows every real token, so the causal mask
    alone hides it. The per-token loss weights (``SAMPLE_WEIGHT``) come along when the samples
    have weights."""
    import torch
    from transformers import DataCollatorWithFlattening

    flatten = DataCollatorWithFlattening(separator_id=IGNORE_INDEX, return_flash_attn_kwargs=True)

    def _collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
        weighted = SAMPLE_WEIGHT in batch[0]
        if layout == PADDING_FREE:
            tensors = flatten(batch)
            weights = [[w for item in batch for w in [item.get(SAMPLE_WEIGHT, 1.0)] * len(item["input_ids"])]]
        else:
            rows = _padded(batch, pad_id)
            tensors = {key: torch.tensor(rows[key]) for key in ("input_ids", "labels")}
            weights = rows[SAMPLE_WEIGHT]
        if weighted:
            tensors[SAMPLE_WEIGHT] = torch.tensor(weights)
        return tensors

    return _collate


def varlen_causal_attention(
    module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
    scaling: float | None = None, **kwargs: Any,
) -> tuple[Any, None]:
    """Causal scaled-dot-product attention within each sample of a padding-free row (bounds in
    ``cu_seq_lens_q``); the (batch, sequence, heads, head_dim) output transformers expects."""
    import torch
    import torch.nn.functional as functional

    bounds = kwargs["cu_seq_lens_q"].tolist()
    grouped = getattr(module, "num_key_value_groups", 1) > 1
    parts = [
        functional.scaled_dot_product_attention(
            query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], dropout_p=dropout, is_causal=True,
            scale=scaling, enable_gqa=grouped,
        )
        for a, b in zip(bounds, bounds[1:], strict=False)
    ]
    return torch.cat(parts, dim=2).transpose(1, 2).contiguous(), None


def varlen_kernel(model: Any) -> str | None:
    """``VARLEN_KERNEL`` where transformers' own varlen attention can run ``model``: CUDA, a
    float16/bfloat16 model and the flash-attn package or the kernels package; else None."""
    import torch
    from transformers.utils import is_flash_attn_2_available, is_kernels_available

    if not torch.cuda.is_available() or model.dtype not in (torch.float16, torch.bfloat16):
        return None
    return VARLEN_KERNEL if is_flash_attn_2_available() or is_kernels_available() else None


def use_varlen_attention(model: Any) -> str:
    """Switch ``model`` to an attention that keeps each sample of a padding-free row to itself:
    ``varlen_kernel``'s where there is one (and it loads), else ``varlen_causal_attention``.
    Returns the previous implementation's name, to switch back before saving."""
    from transformers import AttentionInterface

    previous = model.config._attn_implementation
    kernel = varlen_kernel(model)
    if kernel is not None:
        try:
            model.set_attn_implementation(kernel)
            return previous
        except (ImportError, OSError, RuntimeError, ValueError) as exc:  # e.g. a kernel not cached offline
            print(f"finetune: {kernel} unavailable ({str(exc).splitlines()[0][:200]}); "
                  "padding-free batches use one SDPA call per sample", file=sys.stderr)
    AttentionInterface.register(VARLEN_ATTENTION, varlen_causal_attention)
    model.set_attn_implementation(VARLEN_ATTENTION)
    return previous
