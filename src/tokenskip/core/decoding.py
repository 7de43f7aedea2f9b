"""Batched greedy decoding with the KV cache, shared by generate, evaluate, base-model and the
served model; :func:`solve_problems` is the one loop from problems to checked ``cot`` records."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tokenskip.core.hf import eos_token_ids
from tokenskip.core.problems import Problem
from tokenskip.core.progress import progress
from tokenskip.core.records import cot_record


@dataclass(frozen=True)
class Generation:
    """One decoded output: text (special tokens removed) and its new-token count."""

    text: str
    new_tokens: int


def _count_new_tokens(row: list[int], eos_ids: Sequence[int], pad_id: int | None) -> int:
    for index, token in enumerate(row):
        if token in eos_ids:
            return index
    while row and pad_id is not None and row[-1] == pad_id:
        row = row[:-1]
    return len(row)


def length_order(prompts: Sequence[str]) -> list[int]:
    """Prompt indices in the order :func:`generate_greedy` batches them (stable sort by length).

    The Ray backend shards this same order, which is what makes its batches, and so its outputs,
    identical to a single-process run's.
    """
    return sorted(range(len(prompts)), key=lambda i: len(prompts[i]))


def generate_greedy(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    batch_size: int,
    max_new_tokens: int,
    desc: str = "generate",
    *,
    done: Mapping[int, Generation] | None = None,
    on_batch: Callable[[list[int], list[Generation]], None] | None = None,
) -> tuple[list[Generation], float]:
    """Greedy-decode ``prompts`` in batches sorted by length (left padding, stop at EOS).

    Returns the generations in input order and the wall-clock seconds spent.
    Resuming: batches whose prompts are all in ``done`` (index -> Generation, e.g. from a
    checkpoint) are not decoded again; ``on_batch(indices, generations)`` is called after each
    decoded batch (e.g. to append it to a checkpoint). Batches are the same on every call.
    """
    import torch

    order = length_order(prompts)
    eos_ids = eos_token_ids(tokenizer, model.generation_config)
    results: list[Generation | None] = [None] * len(prompts)
    started = time.perf_counter()
    bar = progress(total=len(prompts), desc=desc, unit="q")
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        if done is not None and all(i in done for i in batch):
            for index in batch:
                results[index] = done[index]
            bar.update(len(batch))
            continue
        encoded = tokenizer(
            [prompts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False
        ).to(model.device)
        with torch.inference_mode():
            output = model.generate(
                **encoded,
                do_sample=False,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=eos_ids,
            )
        new = output[:, encoded["input_ids"].shape[1] :].tolist()
        for index, row in zip(batch, new, strict=True):
            count = _count_new_tokens(row, eos_ids, tokenizer.pad_token_id)
            text = tokenizer.decode(row[:count], skip_special_tokens=True)
            results[index] = Generation(text=text.strip(), new_tokens=count)
        if on_batch is not None:
            on_batch(batch, [results[i] for i in batch])  # type: ignore[misc]
        bar.update(len(batch))
    bar.close()
    return [r for r in results if r is not None], time.perf_counter() - started


def solve_problems(
    model: Any,
    tokenizer: Any,
    problems: Sequence[Problem],
    prompts: list[str],
    batch_size: int,
    max_new_tokens: int,
    desc: str,
) -> tuple[list[dict[str, Any]], list[Generation], float]:
    """Greedy-decode one prompt per problem and check each output against its gold answer.

    Returns the ``cot`` records (see :func:`tokenskip.core.records.cot_record`), the generations
    and the decoding seconds.
    """
    outputs, seconds = generate_greedy(model, tokenizer, prompts, batch_size, max_new_tokens, desc=desc)
    records = [cot_record(p, o.text, tokenizer) for p, o in zip(problems, outputs, strict=True)]
    return records, outputs, seconds
