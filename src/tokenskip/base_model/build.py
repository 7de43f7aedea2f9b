"""One call from training problems to a trained (model, tokenizer): tokenizer, Qwen2 model, training."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from tokenskip.base_model.model import build_model
from tokenskip.base_model.packing import pack_examples
from tokenskip.base_model.parallel import train_data_parallel
from tokenskip.base_model.tokenizer import CHAT_TEMPLATE, build_tokenizer
from tokenskip.base_model.train import TrainResult, train_steps
from tokenskip.core.params import BaseModelParams
from tokenskip.core.problems import Problem
from tokenskip.core.prompts import format_completion


def tokenizer_corpus(problems: Sequence[Problem], instruction: str) -> Iterator[str]:
    """The texts the tokenizer is trained on: every example's prompt text and completion.

    The instruction and role names are repeated per example so BPE merges them into few tokens
    (fewer loss-free prompt tokens per packed row).
    """
    yield CHAT_TEMPLATE
    for problem in problems:
        yield f"user\n{instruction}\n{problem.question}"
        yield f"assistant\n{format_completion(problem.solution, problem.gold)}"


def train_model(
    model: Any,
    input_ids: Any,
    labels: Any,
    params: BaseModelParams,
    on_log: Callable[[int, float, float], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place for ``params.max_steps`` AdamW steps (or until the time cap).

    With ``params.num_processes > 1`` the same steps run data-parallel in that many processes
    (:mod:`tokenskip.base_model.parallel`). ``on_log(step, loss, tokens_per_s)`` is called every
    50 steps (for logs without a terminal); it must be picklable when processes are used.
    """
    import torch

    torch.use_deterministic_algorithms(True, warn_only=True)  # here too: the report reads this process
    if params.num_processes > 1:
        return train_data_parallel(model, input_ids, labels, params, on_log)
    torch.set_num_threads(params.threads)
    return train_steps(model, input_ids, labels, params, on_log)


def train_bootstrap(
    problems: Sequence[Problem],
    instruction: str,
    params: BaseModelParams,
    on_log: Callable[[int, float, float], None] | None = None,
) -> tuple[Any, Any, TrainResult]:
    """Train tokenizer and model from scratch on ``problems``; return (model, tokenizer, result)."""
    tokenizer = build_tokenizer(tokenizer_corpus(problems, instruction), params.vocab_size)
    input_ids, labels = pack_examples(problems, tokenizer, instruction, params.seq_len, params.seed)
    model = build_model(params, tokenizer)
    result = train_model(model, input_ids, labels, params, on_log)
    return model, tokenizer, result


def save_bootstrap(model: Any, tokenizer: Any, out_dir: str) -> None:
    """``save_pretrained`` model (safetensors) and tokenizer into ``out_dir``."""
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
