"""Loss weight of the original CoTs: the g = 1.0 samples may count more than the compressed ones.

Training on compressed CoTs is what costs g = 1.0 its accuracy (the fine-tuned model's arithmetic
drifts); repeating each original CoT in the samples file helps g = 1.0 but costs fine-tuning time.
``finetune.full_cot_loss_weight`` gives the same emphasis at no cost: each token of a g = 1.0
sample counts that many times in the loss. At 1.0 the Trainer's own loss runs unchanged.
"""

from __future__ import annotations

from typing import Any

SAMPLE_WEIGHT = "sample_weight"  # the batch key the collator adds and the trainer pops


def sample_weight(ratio: float, full_cot_loss_weight: float) -> float:
    """The loss weight of one sample: ``full_cot_loss_weight`` for an original CoT (g = 1.0), else 1."""
    return full_cot_loss_weight if ratio >= 1.0 else 1.0


def weighted_causal_lm_loss(logits: Any, labels: Any, weights: Any, num_items: Any) -> Any:
    """Next-token cross-entropy, each sample's tokens times its weight, summed over ``num_items``.

    Same shift and normalisation as transformers' causal-LM loss (labels -100 ignored, the sum
    divided by the number of label tokens in the batch), so equal weights give the same loss.
    """
    import torch.nn.functional as functional

    shifted = functional.pad(labels, (0, 1), value=-100)[..., 1:]
    token_loss = functional.cross_entropy(
        logits.float().flatten(0, 1), shifted.flatten(), ignore_index=-100, reduction="none"
    ).view_as(shifted)
    if num_items is None:
        num_items = (shifted != -100).sum()
    return (token_loss * weights[:, None]).sum() / num_items


def trainer_class(full_cot_loss_weight: float) -> Any:
    """transformers' ``Trainer``, or at a weight other than 1 a subclass computing the weighted loss."""
    from transformers import Trainer

    if full_cot_loss_weight == 1.0:
        return Trainer

    class WeightedLossTrainer(Trainer):
        """A Trainer whose loss weights each sample by the batch's ``sample_weight``."""

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            weights = inputs.pop(SAMPLE_WEIGHT)
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            loss = weighted_causal_lm_loss(outputs.logits, labels, weights.to(outputs.logits.device),
                                           num_items_in_batch)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes  # num_items counts every process's tokens
            return (loss, outputs) if return_outputs else loss

    return WeightedLossTrainer
