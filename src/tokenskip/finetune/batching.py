"""Training batches: padding-free (one process) or right-padded (data-parallel processes).

A random batch of mixed ratios is about a quarter padding when each sample gets a padded row.
Padding-free, the batch's samples are laid end to end in one row, ``position_ids`` restart at 0
for every sample, and attention runs causally within each sample (``varlen_causal_attention``,
registered with transformers' ``AttentionInterface``, bounds in ``cu_seq_lens_q``), so every
sample sees exactly what it sees alone and the loss is the padded batch's: the same label tokens
(the first token of a sample is a prompt token, labelled -100, so nothing is predicted across a
boundary), the same ``num_items_in_batch``. Only the padding's compute is gone (README: Params).
Under data-parallel processes the global batch is split by rows, so batches stay padded there.
"""

from __future__ import annotations

from typing import Any

IGNORE_INDEX = -100  # the label of a token outside the loss (prompt, padding)
SAMPLE_WEIGHT = "sample_weight"  # the batch key of per-token loss weights (weighting.py pops it)
VARLEN_ATTENTION = "tokenskip_varlen_sdpa"  # the attention implementation's registered name

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


def _flat(batch: list[dict[str, Any]]) -> tuple[dict[str, list[list[Any]]], list[int]]:
    """All samples in one row with restarting positions; the sample bounds (cumulative lengths)."""
    row: dict[str, list[Any]] = {"input_ids": [], "labels": [], "position_ids": [], SAMPLE_WEIGHT: []}
    bounds = [0]
    for item in batch:
        n = len(item["input_ids"])
        row["input_ids"] += item["input_ids"]
        row["labels"] += [IGNORE_INDEX] + item["labels"][1:]  # never predicted from the sample before
        row["position_ids"] += list(range(n))
        row[SAMPLE_WEIGHT] += [item.get(SAMPLE_WEIGHT, 1.0)] * n
        bounds.append(bounds[-1] + n)
    return {key: [values] for key, values in row.items()}, bounds


def collate(pad_id: int, layout: str = PADDED) -> Any:
    """A collator for ``layout`` (``padding-free`` or ``padded``). Padded batches carry no attention
    mask: the padding follows every real token, so the causal mask alone hides it. The per-token
    loss weights (``SAMPLE_WEIGHT``) come along when the samples have weights."""
    import torch

    def _collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
        if layout == PADDING_FREE:
            rows, bounds = _flat(batch)
            longest = max(b - a for a, b in zip(bounds, bounds[1:], strict=False))
            cumulative = torch.tensor(bounds, dtype=torch.int32)
            extra = {"position_ids": torch.tensor(rows["position_ids"]), "cu_seq_lens_q": cumulative,
                     "cu_seq_lens_k": cumulative, "max_length_q": longest, "max_length_k": longest}
        else:
            rows, extra = _padded(batch, pad_id), {}
        tensors = {key: torch.tensor(rows[key]) for key in ("input_ids", "labels")} | extra
        if SAMPLE_WEIGHT in batch[0]:
            tensors[SAMPLE_WEIGHT] = torch.tensor(rows[SAMPLE_WEIGHT])
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


def use_varlen_attention(model: Any) -> str:
    """Switch ``model`` (its config) to ``varlen_causal_attention``; returns the previous
    implementation's name, to switch back before saving."""
    from transformers import AttentionInterface

    AttentionInterface.register(VARLEN_ATTENTION, varlen_causal_attention)
    previous = model.config._attn_implementation
    model.config._attn_implementation = VARLEN_ATTENTION
    return previous
