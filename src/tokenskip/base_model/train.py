"""Step-budgeted training of the bootstrap model (loss on the completion side only).

Each example is ``build_prompt(question)`` (no ratio) + ``format_completion(solution, gold)`` +
EOS, one per row (:mod:`tokenskip.base_model.packing`), in length-grouped batches trimmed to
their longest example. The loss is the mean over the completion tokens of each global batch.
The binding budget is ``max_steps`` (same seed and params, same model, even on a busy CPU);
``time_budget_s`` is only a safety cap, and when it stops training the result says so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tokenskip.base_model.packing import IGNORE, example_lengths
from tokenskip.core.params import BaseModelParams
from tokenskip.core.progress import progress


@dataclass
class TrainResult:
    """What a training run did: steps, seconds, tokens/s, losses and why it stopped."""

    steps: int
    train_seconds: float
    tokens: int
    tokens_per_s: float
    first_loss: float
    final_loss: float
    stopped_by: str
    losses: list[float] = field(default_factory=list)


def _schedule(step: int, warmup: int, total: int) -> float:
    """Linear warmup, then cosine decay to 10% of the peak learning rate."""
    if step < warmup:
        return (step + 1) / warmup
    progress_frac = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress_frac)))


def length_grouped_batches(lengths: Any, batch_size: int, seed: int) -> Iterator[Any]:
    """Endless seeded batches of rows of similar length, so trimming a batch to its longest row
    leaves little padding: each epoch, ``transformers``' length grouping (a random permutation
    cut into megabatches of up to 50 batches, each sorted by length) is cut into batches, which
    are then shuffled (the library serves each megabatch longest first)."""
    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    generator = torch.Generator().manual_seed(seed)
    values = [int(length) for length in lengths]
    while True:
        order = get_length_grouped_indices(values, batch_size, generator=generator)
        batches = [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
        for pick in torch.randperm(len(batches), generator=generator).tolist():
            yield torch.tensor(batches[pick])


def training_batches(labels: Any, params: BaseModelParams) -> Iterator[tuple[Any, int]]:
    """Each step's global batch: ``(row indices, width)``, the rows trimmed to ``width`` columns:
    length-grouped batches of one example per row, each trimmed to its longest row."""
    lengths = example_lengths(labels)
    for index in length_grouped_batches(lengths, params.batch_size, params.seed):
        yield index, int(lengths[index].max())


def count_labeled(labels: Any) -> int:
    """Positions that carry loss in a causal-LM batch (labels shifted by one, ``-100`` ignored)."""
    return int((labels[:, 1:] != IGNORE).sum())


def _step_loss(model: Any, input_ids: Any, labels: Any, index: Any, local: Any) -> Any:
    """This process's part of the loss of the global batch ``index`` (its rows ``local``).

    Scaled so that the sum over processes is the mean over the whole global batch.
    """
    share = count_labeled(labels[local]) / max(1, count_labeled(labels[index]))
    return model(input_ids=input_ids[local], labels=labels[local]).loss * share


def train_steps(
    model: Any,
    input_ids: Any,
    labels: Any,
    params: BaseModelParams,
    on_log: Callable[[int, float, float], None] | None = None,
    sync: Callable[[Any, float, bool], tuple[float, bool]] | None = None,
    rank: int = 0,
    world: int = 1,
) -> TrainResult:
    """The training loop of one process: rank ``rank`` of ``world`` takes rows ``rank::world``
    of every global batch; ``sync(model, loss, stop)`` sums gradients and losses over processes.

    Each process's loss is scaled by its share of the global batch's labeled positions, so the
    summed gradient is the gradient of the mean over the whole global batch (as with one process).
    """
    import torch

    torch.use_deterministic_algorithms(True, warn_only=True)  # CPU kernels are; this makes sure
    torch.manual_seed(params.seed)
    model.train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay, betas=(0.9, 0.95)
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: _schedule(s, params.warmup_steps, params.max_steps)
    )
    losses: list[float] = []
    tokens, stopped_by = 0, "max_steps"
    bar = progress(total=params.max_steps, desc="base-model train", unit="step", enabled=rank == 0)
    started = time.perf_counter()
    batches = training_batches(labels, params)
    for step in range(params.max_steps):
        index, width = next(batches)
        local = index[rank::world]
        loss = _step_loss(model, input_ids[:, :width], labels[:, :width], index, local)
        loss.backward()
        elapsed = time.perf_counter() - started
        stop = elapsed > params.time_budget_s and step + 1 < params.max_steps
        loss_value, stop = (loss.item(), stop) if sync is None else sync(model, loss.item(), stop)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss_value)
        tokens += index.numel() * width
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.3f}", tok_s=f"{tokens / max(elapsed, 1e-9):,.0f}")
        if on_log is not None and rank == 0 and (step + 1) % 50 == 0:
            on_log(step + 1, sum(losses[-50:]) / len(losses[-50:]), tokens / max(elapsed, 1e-9))
        if stop:
            stopped_by = "time_budget"
            break
    bar.close()
    model.eval()
    return summarize(losses, tokens, time.perf_counter() - started, stopped_by)


def summarize(losses: list[float], tokens: int, seconds: float, stopped_by: str) -> TrainResult:
    """A TrainResult from the per-step losses, tokens seen and wall seconds."""
    tail = losses[-20:]
    return TrainResult(
        steps=len(losses),
        train_seconds=round(seconds, 2),
        tokens=tokens,
        tokens_per_s=round(tokens / max(seconds, 1e-9), 1),
        first_loss=losses[0],
        final_loss=sum(tail) / len(tail),
        stopped_by=stopped_by,
        losses=losses,
    )
