"""Training rows of the bootstrap model: one chat-formatted example per row.

Each example is ``build_prompt(question)`` (no ratio) + ``format_completion(solution, gold)`` +
EOS, exactly the format later stages generate and fine-tune with; prompt tokens get label -100.
Each example has its own row, and training trims each length-grouped batch to its longest
example: no padding to speak of, no attention across examples, every example starts at position
0 as at inference. Rows packed with several examples, or one token stream cut into rows, trained
fewer examples per second and collapsed on more seeds (README: The reproducibility contract).
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
) -> tuple[Any, Any]:
    """Shuffle and tokenize the examples into ``(input_ids, labels)`` of shape [examples, longest]:
    one example per row, padded to the longest example (training trims each batch)."""
    examples = tokenize_examples(problems, tokenizer, instruction, seed)
    check_fits(examples, seq_len)
    return single_rows(examples, tokenizer.pad_token_id)


def check_fits(examples: Sequence[tuple[list[int], list[int]]], seq_len: int) -> None:
    """A clear error if the longest example exceeds ``seq_len``."""
    longest = max(len(ids) for ids, _ in examples)
    if longest > seq_len:
        raise TokenSkipError(
            f"base_model.seq_len: {seq_len} is shorter than the longest training example ({longest} "
            "tokens); raise it"
        )


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
