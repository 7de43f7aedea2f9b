"""One call from training problems to a trained (model, tokenizer): tokenizer, Qwen2 model, training."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from tokenskip.bootstrap.model import build_model
from tokenskip.bootstrap.packing import pack_examples
from tokenskip.bootstrap.tokenizer import CHAT_TEMPLATE, build_tokenizer
from tokenskip.bootstrap.train import TrainResult, token_loss_weights, train_model
from tokenskip.data import Problem, split_gold
from tokenskip.params import BaseModelParams
from tokenskip.prompts import format_completion
from tokenskip.synthetic import generate_problems

TINY_PARAMS = BaseModelParams(
    hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, vocab_size=384,
    seq_len=128, batch_size=8, learning_rate=5e-3, warmup_steps=5, max_steps=30,
)


def tokenizer_corpus(problems: Sequence[Problem], instruction: str) -> Iterator[str]:
    """The texts the tokenizer is trained on: every example's prompt text and completion.

    The instruction and role names are repeated per example so BPE merges them into few tokens
    (fewer loss-free prompt tokens per packed row).
    """
    yield CHAT_TEMPLATE
    for problem in problems:
        yield f"user\n{instruction}\n{problem.question}"
        yield f"assistant\n{format_completion(problem.solution, problem.gold)}"


def training_rows(
    problems: Sequence[Problem], tokenizer: Any, instruction: str, params: BaseModelParams
) -> tuple[Any, Any, Any | None]:
    """``(input_ids, labels, loss_weights)`` packed as ``params`` say; weights None unless
    ``params.digit_loss_weight`` differs from 1."""
    input_ids, labels = pack_examples(
        problems, tokenizer, instruction, params.seq_len, params.seed, params.packing
    )
    if params.digit_loss_weight == 1.0:
        return input_ids, labels, None
    digits = tokenizer.convert_tokens_to_ids([str(d) for d in range(10)])
    return input_ids, labels, token_loss_weights(labels, digits, params.digit_loss_weight)


def train_bootstrap(
    problems: Sequence[Problem],
    instruction: str,
    params: BaseModelParams,
    on_log: Callable[[int, float, float], None] | None = None,
) -> tuple[Any, Any, TrainResult]:
    """Train tokenizer and model from scratch on ``problems``; return (model, tokenizer, result)."""
    tokenizer = build_tokenizer(tokenizer_corpus(problems, instruction), params.vocab_size)
    input_ids, labels, loss_weights = training_rows(problems, tokenizer, instruction, params)
    model = build_model(params, tokenizer)
    result = train_model(model, input_ids, labels, params, on_log, loss_weights)
    return model, tokenizer, result


def save_bootstrap(model: Any, tokenizer: Any, out_dir: str) -> None:
    """``save_pretrained`` model (safetensors) and tokenizer into ``out_dir``."""
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def synthetic_problems(seed: int, count: int, prefix: str = "synthetic") -> list[Problem]:
    """``count`` seeded synthetic problems as Problems (for tests and tiny models)."""
    problems = []
    for index, record in enumerate(generate_problems(seed, count)):
        solution, gold = split_gold(record["answer"])
        problems.append(Problem(f"{prefix}-{index:05d}", record["question"], gold, solution))
    return problems


def train_tiny(out_dir: str, instruction: str, n_problems: int = 200, seed: int = 7) -> TrainResult:
    """Train and save a tiny bootstrap model + tokenizer in a few seconds (test fixture helper)."""
    model, tokenizer, result = train_bootstrap(synthetic_problems(seed, n_problems), instruction, TINY_PARAMS)
    save_bootstrap(model, tokenizer, out_dir)
    return result
