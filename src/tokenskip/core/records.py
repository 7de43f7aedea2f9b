"""The records passed between stages (JSON Lines, see docs/records.md) and token counting.

Field tuples name each record's fields in the order they are written; the validate suites and the
readers use the same tuples. Token counts are always in the target model's tokenizer, counted by
:func:`count_tokens`.
"""

from __future__ import annotations

from typing import Any

from tokenskip.core.answers import answers_match, extract_prediction, split_cot
from tokenskip.core.problems import Problem

PROBLEM_FIELDS = ("id", "question", "gold")
COT_FIELDS = ("id", "question", "gold", "output", "cot", "prediction", "correct", "cot_tokens")
PRUNED_FIELDS = ("id", "ratio", "cot", "compressed_cot", "cot_tokens", "compressed_tokens", "forced_words")
SAMPLE_FIELDS = ("id", "ratio", "prompt", "completion")
# evaluate's per-problem output (reports/outputs.jsonl adds "method" and "g" in front)
EVALUATED_FIELDS = ("id", "question", "gold", "output", "prediction", "correct", "cot_tokens", "new_tokens")


def count_tokens(tokenizer: Any, text: str) -> int:
    """Token count of ``text`` in the target tokenizer (no special tokens added); 0 for empty text."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0


def cot_record(problem: Problem, output: str, tokenizer: Any) -> dict[str, Any]:
    """The ``cot`` record of one problem and the model's output: split, predicted, checked, counted."""
    cot, _ = split_cot(output)
    prediction = extract_prediction(output)
    return {
        "id": problem.id,
        "question": problem.question,
        "gold": problem.gold,
        "output": output,
        "cot": cot,
        "prediction": prediction,
        "correct": answers_match(prediction, problem.gold),
        "cot_tokens": count_tokens(tokenizer, cot),
    }


def evaluated_record(cot: dict[str, Any], new_tokens: int) -> dict[str, Any]:
    """Evaluate's per-problem record: the ``cot`` record without the CoT text, plus ``new_tokens``."""
    return {field: (new_tokens if field == "new_tokens" else cot[field]) for field in EVALUATED_FIELDS}
