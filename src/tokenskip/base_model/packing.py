"""Training rows of the bootstrap model: chat-formatted examples packed into fixed-length rows.

Each example is ``build_prompt(question)`` (no ratio) + ``format_completion(solution, gold)`` +
EOS, exactly the format later stages generate and fine-tune with; prompt tokens get label -100.
``single`` (params.yaml's default) gives each example its own row, and training trims each
length-grouped batch to its longest example: no padding to speak of, no attention across
examples, every example starts at position 0 as at inference, and about 1.5 times as many
examples per second as ``whole`` (seed figures: README, The reproducibility contract). ``whole`` packs
whole examples first-fit into each row (the rest is padding), so every answer token sees its
question but also attends to the examples before it in its row; ``stream`` cuts one token
stream every ``seq_len`` tokens (no padding, but most examples then straddle two rows, their later
answer tokens lose the question they copy numbers from, and more seeds collapsed with it).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.problems import Problem
from tokenskip.core.prompts import build_prompt, format_completion

IGNORE = -100


def example_texts(problem: Problem, tokenizer: Any, instruction: str) -> tuple[str, str]:
    """(prompt, completion + EOS) of one training example."""
    prompt = build_prompt(tokenizer, problem.question, instruction)
    return prompt, format_completion(problem.solution, problem.gold) + tokenizer.eos_token


def tokenize_examples(
    problems: Sequence[Problem], tokenizer: Any, instruction: str, seed: int
) -> list[tuple[list[int], list[int]]]:
    """Seeded shuffle, then ``(token ids, labels)`` per example; prompt tokens get label -100."""
    order = list(range(len(problems)))
    random.Random(seed).shuffle(order)
    pairs = [example_texts(problems[i], tokenizer, instruction) for i in order]
    prompts = tokenizer([p for p, _ in pairs], add_special_tokens=False)["input_ids"]
    completions = tokenizer([c for _, c in pairs], add_special_tokens=False)["input_ids"]
    return [
        (prompt_ids + completion_ids, [IGNORE] * len(prompt_ids) + completion_ids)
        for prompt_ids, completion_ids in zip(prompts, completions, strict=True)
    ]


def pack_examples(
    problems: Sequence[Problem],
    tokenizer: Any,
    instruction: str,
    seq_len: int,
    seed: int,
    packing: str = "stream",
) -> tuple[Any, Any]:
    """Shuffle, tokenize and pack the examples into ``(input_ids, labels)`` of shape [rows, seq_len].

    ``single``: one example per row, padded to the longest example (training trims each batch).
    ``whole``: every example lies entirely inside one row (first fit; the rest of a row is
    padding with label -100), so each answer token sees its question, as at inference.
    ``stream``: one token stream cut every ``seq_len`` tokens (no padding, but most examples are
    split across rows and their later answer tokens lose the question they copy from).
    """
    import torch

    examples = tokenize_examples(problems, tokenizer, instruction, seed)
    if packing == "single":
        check_fits(examples, seq_len)
        return single_rows(examples, tokenizer.pad_token_id)
    if packing == "stream":
        ids = [token for example_ids, _ in examples for token in example_ids]
        labels = [label for _, example_labels in examples for label in example_labels]
        rows = len(ids) // seq_len
        if rows == 0:
            raise ValueError(f"{len(ids)} tokens do not fill one row of {seq_len}")
        cut = rows * seq_len
        return (
            torch.tensor(ids[:cut], dtype=torch.long).view(rows, seq_len),
            torch.tensor(labels[:cut], dtype=torch.long).view(rows, seq_len),
        )
    packed = first_fit_rows(examples, seq_len)
    pad = tokenizer.pad_token_id
    return (
        torch.tensor([ids + [pad] * (seq_len - len(ids)) for ids, _ in packed], dtype=torch.long),
        torch.tensor([lab + [IGNORE] * (seq_len - len(lab)) for _, lab in packed], dtype=torch.long),
    )


def check_fits(examples: Sequence[tuple[list[int], list[int]]], seq_len: int) -> None:
    """A clear error if the longest example exceeds ``seq_len`` (``whole``, ``single``)."""
    longest = max(len(ids) for ids, _ in examples)
    if longest > seq_len:
        raise TokenSkipError(
            f"base_model.seq_len: {seq_len} is shorter than the longest training example ({longest} "
            "tokens); raise it or set base_model.packing: stream"
        )


def first_fit_rows(
    examples: Sequence[tuple[list[int], list[int]]], seq_len: int
) -> list[tuple[list[int], list[int]]]:
    """Place each example, in order, into the first row with room for all of it (unpadded rows).

    Rows with less room than the shortest example are closed, so the search stays short.
    """
    check_fits(examples, seq_len)
    shortest = min(len(ids) for ids, _ in examples)
    rows: list[tuple[list[int], list[int]]] = []
    open_rows: list[int] = []
    for ids, labels in examples:
        target = next((r for r in open_rows if len(rows[r][0]) + len(ids) <= seq_len), None)
        if target is None:
            rows.append(([], []))
            open_rows.append(target := len(rows) - 1)
        rows[target][0].extend(ids)
        rows[target][1].extend(labels)
        if seq_len - len(rows[target][0]) < shortest:
            open_rows.remove(target)
    return rows


def single_rows(examples: Sequence[tuple[list[int], list[int]]], pad: int) -> tuple[Any, Any]:
    """One example per row, right-padded to the longest example (padding label -100).

    Training trims each batch to its longest example (:func:`example_lengths`), so padding and
    attention cost follow the examples' own lengths, and every example starts at position 0.
    """
    import torch

    longest = max(len(ids) for ids, _ in examples)
    return (
        torch.tensor([ids + [pad] * (longest - len(ids)) for ids, _ in examples], dtype=torch.long),
        torch.tensor([lab + [IGNORE] * (longest - len(lab)) for _, lab in examples], dtype=torch.long),
    )


def example_lengths(labels: Any) -> Any:
    """Per row, one past its last labeled position (an example ends with its labeled EOS)."""
    import torch

    positions = torch.arange(1, labels.shape[1] + 1).expand_as(labels)
    return torch.where(labels != IGNORE, positions, 0).max(dim=1).values
