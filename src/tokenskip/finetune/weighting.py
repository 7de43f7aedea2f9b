"""The fine-tuning loss: next-token cross-entropy on the label tokens, optionally weighted.

Loss weight of the original CoTs: training on compressed CoTs is what costs g = 1.0 its accuracy
(the fine-tuned model's arithmetic drifts); repeating each original CoT in the samples file helps
g = 1.0 but costs fine-tuning time. ``finetune.full_cot_loss_weight`` gives a similar emphasis at no
cost: each token of a g = 1.0 sample counts that many times in the loss.

The trainer here asks the model for logits at the positions that predict a label only
(``logits_to_keep`` as a boolean mask): prompt tokens need no vocabulary projection. At weight 1.0
on padded batches the plain transformers ``Trainer`` runs unchanged.
"""

from __future__ import annotations

from typing import Any

from tokenskip.finetune.batching import IGNORE_INDEX, PADDED, SAMPLE_WEIGHT


def sample_weight(ratio: float, full_cot_loss_weight: float) -> float:
    """The loss weight of one sample: ``full_cot_loss_weight`` for an original CoT (g = 1.0), else 1."""
    return full_cot_loss_weight if ratio >= 1.0 else 1.0


def predicting_positions(labels: Any) -> tuple[Any, Any]:
    """(mask of the positions whose next token is a label, those labels): the causal-LM shift."""
    import torch.nn.functional as functional

    shifted = functional.pad(labels, (0, 1), value=IGNORE_INDEX)[..., 1:]
    keep = shifted != IGNORE_INDEX
    return keep, shifted[keep]


def weighted_causal_lm_loss(logits: Any, targets: Any, weights: Any, num_items: Any) -> Any:
    """Cross-entropy of ``logits`` (N, vocab) at the predicting positions against ``targets`` (N),
    each times its weight (N), summed and divided by ``num_items`` (default: N).

    Same normalisation as transformers' causal-LM loss (the sum over the number of label tokens in
    the batch), so equal weights give the same loss.
    """
    import torch.nn.functional as functional

    token_loss = functional.cross_entropy(logits.float(), targets, reduction="none")
    if num_items is None:
        num_items = targets.numel()
    return (token_loss * weights).sum() / num_items


def trainer_class(full_cot_loss_weight: float, layout: str) -> Any:
    """transformers' ``Trainer``, or (padding-free, or a weight other than 1) a subclass computing
    the loss from the label positions' logits only."""
    from transformers import Trainer

    if full_cot_loss_weight == 1.0 and layout == PADDED:
        return Trainer

    class LabelPositionsTrainer(Trainer):
        """A Trainer whose loss projects only the label-predicting positions, weighted by the
        batch's per-token ``sample_weight`` when it has one."""

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            weights = inputs.pop(SAMPLE_WEIGHT, None)
            keep, targets = predicting_positions(inputs.pop("labels"))
            outputs = model(**inputs, logits_to_keep=keep)
            token_weights = weights[keep].to(outputs.logits.device) if weights is not None else 1.0
            loss = weighted_causal_lm_loss(outputs.logits, targets, token_weights, num_items_in_batch)
            if num_items_in_batch is not None and self.args.average_tokens_across_devices:
                loss = loss * self.accelerator.num_processes  # num_items counts every process's tokens
            return (loss, outputs) if return_outputs else loss

    return LabelPositionsTrainer
