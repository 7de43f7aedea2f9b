"""TokenSkip prompt and completion formats.

Prompt: the chat template over ``instruction + question`` and, for g < 1, the ratio tag
``<eos>g<eos>`` right after the question (the paper's ``question <eos> g <eos>``).
Completion: the (compressed) CoT, then ``The final answer is: \\boxed{N}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

FINAL_ANSWER_PREFIX = "The final answer is: "


def ratio_key(ratio: float) -> str:
    """How a ratio is written in file names, report keys and tags: 0.5 -> "0.5", 1.0 -> "1.0"."""
    return f"{ratio:.1f}" if float(ratio).is_integer() else f"{ratio:g}"


def trained_ratios(ratios: Sequence[float], largest_first: bool = True) -> list[float]:
    """The ratios a TokenSkip model is trained and evaluated at: 1.0 (the full CoT, no ratio tag)
    and each configured g, largest first (as reports list them) or smallest first."""
    return sorted({1.0, *ratios}, reverse=largest_first)


def ratio_tag(eos_token: str, ratio: float | None) -> str:
    """``<eos>0.5<eos>`` for g < 1; empty for g = 1.0 or None (the full CoT, as in the paper)."""
    if ratio is None or ratio >= 1.0:
        return ""
    return f"{eos_token}{ratio:g}{eos_token}"


def build_prompt(tokenizer: Any, question: str, instruction: str, ratio: float | None = None) -> str:
    """The generation prompt for ``question`` at ratio g, rendered by the chat template."""
    content = f"{instruction}\n{question}{ratio_tag(tokenizer.eos_token, ratio)}"
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )


def format_completion(cot: str, answer: str) -> str:
    """The training target: CoT followed by the final-answer line."""
    return f"{cot.strip()}\n{FINAL_ANSWER_PREFIX}\\boxed{{{answer}}}"
