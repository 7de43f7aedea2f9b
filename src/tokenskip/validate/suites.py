"""The Great Expectations suites of the validate stage: one named built-in expectation per rule.

Each expectation carries ``meta={"name": "<suite>.<rule>"}``, a one-line ``notes`` and the
description ``"<name>: <notes>"`` that the data docs show. Cross-record rules and the rules on
the text (``text_checks.py``: compressed CoT a subsequence of the CoT's words, forced digits and
operators kept, numbers intact, completion = pruned CoT + answer line, prompt tag = g) run on the
derived columns of ``frames.py``; a derived check that cannot be computed is False there, so it
fails here (GX's column-value expectations skip nulls). Token-count rules on pruned records use the
recount of their text in the target tokenizer.
Great Expectations is imported inside the functions (it is slow to import).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tokenskip.core.prompts import FINAL_ANSWER_PREFIX
from tokenskip.core.records import COT_FIELDS, PRUNED_FIELDS, SAMPLE_FIELDS

# Floats compared against a tolerance: a mean of exactly target + tolerance passes.
EPSILON = 1e-9
NOT_BLANK = r"\S"
FINAL_ANSWER_LINE = r"(?:^|\n)" + re.escape(FINAL_ANSWER_PREFIX) + r"\\boxed\{[^\n]+\}\s*\Z"

# Columns that identify a row in failure examples, per suite.
INDEX_COLUMNS: dict[str, list[str]] = {
    "generated_cots": ["id"],
    "pruned_cots": ["id", "ratio"],
    "pruned_ratios": ["ratio"],
    "training_samples": ["id", "ratio"],
    "training_ratio_mix": ["ratio"],
}
# Derived check columns holding True or, for a broken record, the line that names it (file, record
# id, what broke): the report lists those lines with the failure.
DESCRIBING_CHECKS = ("numbers_all_kept", "numbers_unchanged")


@dataclass(frozen=True)
class Thresholds:
    """What the suites need from params.yaml."""

    max_cot_tokens: int
    ratios: Sequence[float]
    force_digits: bool
    ratio_tolerance: float
    ratio_mix_tolerance: float
    force_tokens: Sequence[str] = ()  # prune.force_tokens: words prune always keeps (operators)
    answers: str = "number"  # "number" (synthetic, gsm8k) or "latex" (math, jsonl: math-verify parses)


def _rule(kind: Any, name: str, notes: str, **kwargs: Any) -> Any:
    """A built-in expectation named ``name``; the data docs show ``name: notes`` as its text
    (a string template rendered as HTML: no ``<``, ``>`` or ``$`` in notes)."""
    if set(notes) & set("<>$"):
        raise ValueError(f"{name}: notes must not contain '<', '>' or '$'")
    return kind(meta={"name": name}, notes=notes, description=f"{name}: {notes}", **kwargs)


def _present(gx: Any, suite: str, fields: Sequence[str]) -> list[Any]:
    return [
        _rule(gx.expectations.ExpectColumnValuesToNotBeNull, f"{suite}.{field}_present",
              f"every record has a non-null '{field}'", column=field)
        for field in fields
    ]


def _is_true(gx: Any, name: str, notes: str, column: str) -> Any:
    """``column`` is True on every row (a null is skipped: derived columns hold no nulls)."""
    return _rule(gx.expectations.ExpectColumnValuesToBeInSet, name, notes, column=column, value_set=[True])


def _generated(gx: Any, t: Thresholds) -> list[Any]:
    e, s = gx.expectations, "generated_cots"
    return [
        *_present(gx, s, COT_FIELDS),
        _rule(e.ExpectColumnValuesToBeUnique, f"{s}.id_unique", "question ids are unique", column="id"),
        _is_true(gx, f"{s}.all_correct", "only correctly answered CoTs are kept", "correct"),
        _rule(e.ExpectColumnValuesToBeBetween, f"{s}.cot_tokens_in_range",
              f"CoT token count within [1, generate.max_cot_tokens={t.max_cot_tokens}]",
              column="cot_tokens", min_value=1, max_value=t.max_cot_tokens),
        _rule(e.ExpectColumnValuesToMatchRegex, f"{s}.cot_not_empty", "the CoT is not blank",
              column="cot", regex=NOT_BLANK),
        *_answer_rules(gx, s, t.answers),
    ]


def _answer_rules(gx: Any, s: str, answers: str) -> list[Any]:
    """Numeric datasets: the prediction is a number. LaTeX datasets (MATH, any JSON Lines file):
    the gold answer and the prediction each parse as an answer (a number or math-verify's parse)."""
    if answers == "number":
        return [_is_true(gx, f"{s}.prediction_is_number", "the prediction parses as a number",
                         "prediction_is_number")]
    return [
        _is_true(gx, f"{s}.gold_is_answer", "the gold answer is extractable: a number, or LaTeX "
                 "that math-verify parses", "gold_is_answer"),
        _is_true(gx, f"{s}.prediction_is_answer", "the prediction is a number, or LaTeX that "
                 "math-verify parses", "prediction_is_answer"),
    ]


def _pruned(gx: Any, t: Thresholds) -> list[Any]:
    e, s = gx.expectations, "pruned_cots"
    rules = [
        *_present(gx, s, PRUNED_FIELDS),
        _rule(e.ExpectCompoundColumnsToBeUnique, f"{s}.id_ratio_unique", "one record per (id, ratio)",
              column_list=["id", "ratio"]),
        _rule(e.ExpectColumnValuesToBeInSet, f"{s}.ratio_configured", "ratio is one of prune.ratios",
              column="ratio", value_set=list(t.ratios)),
        _is_true(gx, f"{s}.ratio_matches_file", "ratio equals the g in its file name (pruned_g.jsonl)",
                 "ratio_matches_file"),
        _is_true(gx, f"{s}.id_in_generated", "every pruned id is a generated CoT id", "in_generated"),
        _is_true(gx, f"{s}.cot_matches_generated",
                 "the record's CoT is the generated CoT of its id (cot.jsonl)", "cot_matches_generated"),
        _rule(e.ExpectColumnValuesToMatchRegex, f"{s}.compressed_cot_not_empty",
              "the compressed CoT is not blank", column="compressed_cot", regex=NOT_BLANK),
        _rule(e.ExpectColumnPairValuesAToBeGreaterThanB, f"{s}.compressed_not_longer",
              "compressed_tokens is at most cot_tokens", column_A="cot_tokens", column_B="compressed_tokens",
              or_equal=True),
        _is_true(gx, f"{s}.cot_tokens_match_text",
                 "cot_tokens equals the CoT's token count, recounted with the target tokenizer",
                 "cot_tokens_match_text"),
        _is_true(gx, f"{s}.compressed_tokens_match_text",
                 "compressed_tokens equals the compressed CoT's token count, recounted with the "
                 "target tokenizer", "compressed_tokens_match_text"),
        _is_true(gx, f"{s}.compressed_is_subsequence",
                 "the compressed CoT is words of the CoT (split as prune splits them) in their original "
                 "order: none added, repeated or moved", "words_in_order"),
    ]
    if t.force_digits:
        rules.append(_is_true(gx, f"{s}.digits_kept_in_order",
                              "prune.force_digits: the CoT's digits appear in the compressed CoT in order",
                              "digits_in_order"))
    if t.force_tokens:
        rules.append(_is_true(gx, f"{s}.force_tokens_kept_in_order",
                              "prune.force_tokens: every such word of the CoT (operators) appears in the "
                              "compressed CoT, in order", "forced_tokens_kept"))
    rules.append(_numbers_rule(gx, s, t.force_digits))
    return rules


def _numbers_rule(gx: Any, s: str, force_digits: bool) -> Any:
    """Numbers (words holding a digit: sign, decimals, exponent, percent, LaTeX groups) are kept or
    dropped whole: with prune.force_digits all of the CoT's are in the compressed CoT, unchanged
    and in order; without, each one the compressed CoT holds is one of the CoT's, unchanged."""
    if force_digits:
        return _is_true(gx, f"{s}.numbers_kept_intact", "prune.force_digits: every number of the CoT "
                        "(sign, decimals, exponent, percent, LaTeX groups) appears unchanged and in order "
                        "in the compressed CoT, which holds no other", "numbers_all_kept")
    return _is_true(gx, f"{s}.numbers_kept_intact", "every number of the compressed CoT (sign, decimals, "
                    "exponent, percent, LaTeX groups) is a number of the CoT, unchanged and in order "
                    "(a dropped number is allowed, a changed one never)", "numbers_unchanged")


def _pruned_ratios(gx: Any, t: Thresholds) -> list[Any]:
    e, s = gx.expectations, "pruned_ratios"
    return [
        _rule(e.ExpectColumnValuesToBeBetween, f"{s}.every_ratio_present",
              "every ratio of prune.ratios has pruned records", column="records", min_value=1),
        _rule(e.ExpectColumnValuesToBeBetween, f"{s}.mean_actual_ratio_on_target",
              f"mean(compressed CoT tokens / CoT tokens), both recounted from the text with the "
              f"target tokenizer, is within validate.ratio_tolerance={t.ratio_tolerance} of g",
              column="ratio_error", max_value=t.ratio_tolerance + EPSILON),
    ]


def _samples(gx: Any, t: Thresholds) -> list[Any]:
    e, s = gx.expectations, "training_samples"
    return [
        *_present(gx, s, SAMPLE_FIELDS),
        _rule(e.ExpectCompoundColumnsToBeUnique, f"{s}.id_ratio_unique", "no duplicate (id, g)",
              column_list=["id", "ratio"]),
        _rule(e.ExpectColumnValuesToBeInSet, f"{s}.ratio_known", "g is one of prune.ratios or 1.0",
              column="ratio", value_set=[*t.ratios, 1.0]),
        _is_true(gx, f"{s}.prompt_tag_is_ratio",
                 "below g = 1 the prompt holds exactly one ratio tag (eos g eos) and its value is the "
                 "sample's g; at g = 1 it holds none", "tag_matches_ratio"),
        _rule(e.ExpectColumnValuesToMatchRegex, f"{s}.completion_ends_with_final_answer",
              f"the completion ends with the line '{FINAL_ANSWER_PREFIX}\\boxed{{N}}'",
              column="completion", regex=FINAL_ANSWER_LINE),
        _is_true(gx, f"{s}.completion_is_pruned_cot_and_answer",
                 f"the completion is exactly the CoT pruned to its g (the generated CoT at g = 1), a "
                 f"line break and '{FINAL_ANSWER_PREFIX}\\boxed{{gold}}' with the gold answer of its "
                 f"cot record", "completion_matches"),
    ]


def _ratio_mix(gx: Any, t: Thresholds) -> list[Any]:
    share = 1.0 / (len(t.ratios) + 1)
    tol = t.ratio_mix_tolerance
    return [
        _rule(gx.expectations.ExpectColumnValuesToBeBetween, "training_ratio_mix.uniform",
              f"each g in prune.ratios + [1.0] has a share of samples within "
              f"validate.ratio_mix_tolerance={tol} of {share:.4f}",
              column="share", min_value=max(0.0, share - tol - EPSILON), max_value=share + tol + EPSILON),
    ]


def build_suites(t: Thresholds) -> dict[str, list[Any]]:
    """The expectations of every suite, keyed by suite name (the frames' names)."""
    import great_expectations as gx

    return {
        "generated_cots": _generated(gx, t),
        "pruned_cots": _pruned(gx, t),
        "pruned_ratios": _pruned_ratios(gx, t),
        "training_samples": _samples(gx, t),
        "training_ratio_mix": _ratio_mix(gx, t),
    }
