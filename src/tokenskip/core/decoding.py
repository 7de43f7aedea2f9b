"""Batched greedy decoding with the KV cache, shared by generate, evaluate, base-model and the
served model; :func:`solve_problems` is the one loop from problems to checked ``cot`` records."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.hf import context_length, eos_token_ids
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


PROBE_CHARS_PER_TOKEN = 8  # a longer prompt is first measured on a prefix of this many chars per token
PROBE_MARGIN = 16  # tokens that cutting a prompt may add to its prefix's count


def _token_counts(tokenizer: Any, texts: list[str], cap: int) -> list[int]:
    """Token counts (no special tokens added), each capped at ``cap``."""
    if not texts:
        return []
    encoded = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=cap)
    return [len(ids) for ids in encoded["input_ids"]]


def _overflows(tokenizer: Any, text: str, context: int, longest: int) -> bool:
    """Whether a long ``text`` holds more than ``context`` tokens, tokenizing a bounded amount:
    none when even tokens of ``longest`` characters could not fit it, a prefix when it is long."""
    if len(text) > context * longest:
        return True
    probe = PROBE_CHARS_PER_TOKEN * (context + PROBE_MARGIN)
    if len(text) > probe:
        cut = max(text.rfind(" ", 0, probe), probe // 2)
        limit = context + PROBE_MARGIN
        if _token_counts(tokenizer, [text[:cut]], limit + 1)[0] > limit:
            return True
    return _token_counts(tokenizer, [text], context + 1)[0] > context


def check_prompt_lengths(
    tokenizer: Any, prompts: Sequence[str], context: int | None, labels: Sequence[str] | None = None
) -> None:
    """Refuse, before any decoding, a prompt longer than the model's ``context`` (in tokens).

    ``labels[i]`` names prompt i in the error (default ``record <i+1> of <n>``). A 10 MB prompt
    is refused from its length in characters, without tokenizing it.
    """
    if context is None:
        return
    short = [i for i, text in enumerate(prompts) if len(text) <= PROBE_CHARS_PER_TOKEN * context]
    counts = dict(zip(short, _token_counts(tokenizer, [prompts[i] for i in short], context + 1), strict=True))
    longest = 1
    if len(short) < len(prompts):  # the longest token in characters bounds a long prompt's count
        longest = max((len(piece) for piece in tokenizer.get_vocab()), default=1)
    for index, text in enumerate(prompts):
        over = counts[index] > context if index in counts else _overflows(tokenizer, text, context, longest)
        if over:
            label = labels[index] if labels is not None else f"record {index + 1} of {len(prompts)}"
            raise TokenSkipError(
                f"{label}: the prompt ({len(text)} characters) is longer than the model's context "
                f"of {context} tokens; shorten the question"
            )


def model_context(model: Any, tokenizer: Any) -> int | None:
    """The context in tokens of a loaded model (see :func:`tokenskip.core.hf.context_length`)."""
    return context_length(getattr(model, "config", None), tokenizer)


def greedy_settings(
    generation_config: Any | None,
    tokenizer: Any,
    max_new_tokens: int,
    repetition_penalty: float | None = None,
) -> dict[str, Any]:
    """The greedy decoding settings every engine (transformers, Ray, vLLM) passes explicitly:
    ``max_new_tokens``; ``eos_token_ids`` (the tokenizer's EOS and the generation_config's); and
    ``repetition_penalty``: the explicit override (``model.repetition_penalty``), else the model's
    generation_config (Qwen2.5 ships 1.05), else 1.0. Reports and MLflow record this dict."""
    return {
        "max_new_tokens": int(max_new_tokens),
        "eos_token_ids": eos_token_ids(tokenizer, generation_config),
        "repetition_penalty": resolve_repetition_penalty(generation_config, repetition_penalty),
    }


def resolve_repetition_penalty(generation_config: Any | None, repetition_penalty: float | None) -> float:
    """The explicit override, else the generation_config's repetition_penalty, else 1.0."""
    configured = getattr(generation_config, "repetition_penalty", None)
    penalty = repetition_penalty if repetition_penalty is not None else configured
    return float(penalty if penalty is not None else 1.0)


def override_repetition_penalty(model: Any, repetition_penalty: float | None) -> Any:
    """Set ``model.repetition_penalty`` (when not None) on a loaded model's generation_config,
    which :func:`generate_greedy` reads; returns the model."""
    if repetition_penalty is not None:
        model.generation_config.repetition_penalty = float(repetition_penalty)
    return model


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
    labels: Sequence[str] | None = None,
) -> tuple[list[Generation], float]:
    """Greedy-decode ``prompts`` in batches sorted by length (left padding, stop at EOS), with the
    :func:`greedy_settings` of the model's generation_config passed explicitly.

    Returns the generations in input order and the wall-clock seconds spent.
    Resuming: batches whose prompts are all in ``done`` (index -> Generation, e.g. from a
    checkpoint) are not decoded again; ``on_batch(indices, generations)`` is called after each
    decoded batch (e.g. to append it to a checkpoint). Batches are the same on every call.
    First, :func:`check_prompt_lengths` refuses a prompt longer than the context (``labels[i]`` names it).
    """
    import torch

    check_prompt_lengths(tokenizer, prompts, model_context(model, tokenizer), labels)
    order = length_order(prompts)
    settings = greedy_settings(model.generation_config, tokenizer, max_new_tokens)
    eos_ids = settings["eos_token_ids"]
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
                repetition_penalty=settings["repetition_penalty"],
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
    and the decoding seconds. A prompt longer than the model's context is a TokenSkipError naming
    its problem's record and id.
    """
    labels = [f"record {n} (id {problem.id!r}): field 'question'" for n, problem in enumerate(problems, 1)]
    outputs, seconds = generate_greedy(
        model, tokenizer, prompts, batch_size, max_new_tokens, desc=desc, labels=labels
    )
    records = [cot_record(p, o.text, tokenizer) for p, o in zip(problems, outputs, strict=True)]
    return records, outputs, seconds
