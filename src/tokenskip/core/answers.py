"""Answers: the model's final answer in its output, the one CoT/answer split, and matching to gold.

Generate, evaluate, base-model's held-out accuracy and the served pyfunc model all use these
functions, so they read an output the same way.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_ANSWER_IS = re.compile(
    r"(?:final answer|answer)\s*(?:is|:)\s*:?\s*\$?\s*(-?[\d,]*\.?\d+)", re.IGNORECASE
)
_FINAL_LINE = re.compile(r"(?:^|\n)[^\n]*(?:\\boxed\{|final answer|the answer is)", re.IGNORECASE)


def _last_boxed(text: str) -> str | None:
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, begin = 0, start + len("\\boxed{")
    for pos in range(begin - 1, len(text)):
        if text[pos] == "{":
            depth += 1
        elif text[pos] == "}":
            depth -= 1
            if depth == 0:
                return text[begin:pos].strip()
    return None


def extract_prediction(text: str) -> str | None:
    """The model's final answer: last ``\\boxed{}``, else "the answer is N", else the last number."""
    boxed = _last_boxed(text)
    if boxed:
        return boxed
    matches = _ANSWER_IS.findall(text)
    if matches:
        return matches[-1]
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else None


def normalize_number(text: str | None) -> float | None:
    """Parse ``"$1,234.0."`` style answers into a float; None if not a plain number."""
    if text is None:
        return None
    cleaned = text.strip().replace(",", "").replace("$", "").replace("\\%", "").rstrip(".%")
    cleaned = cleaned.replace("\\!", "").strip()
    try:
        return float(cleaned)
    except ValueError:
        return None


def answers_match(prediction: str | None, gold: str) -> bool:
    """Numeric comparison tolerant of commas, ``$``, trailing periods and ``.0``;
    symbolic answers (fractions, expressions) fall back to math-verify."""
    if prediction is None:
        return False
    pred_value, gold_value = normalize_number(prediction), normalize_number(gold)
    if pred_value is not None and gold_value is not None:
        return abs(pred_value - gold_value) <= 1e-6 * max(1.0, abs(gold_value))
    from math_verify import parse, verify  # imported lazily: heavy (sympy)

    try:
        return bool(verify(parse(f"${gold}$"), parse(f"${prediction}$")))
    except Exception:  # math-verify raises many types on unparsable text
        return False


def split_cot(output: str) -> tuple[str, str]:
    """Split a model output into (CoT, final-answer line): the CoT is everything before
    the last line that announces the final answer."""
    matches = list(_FINAL_LINE.finditer(output))
    if not matches:
        return output.strip(), ""
    cut = matches[-1].start()
    return output[:cut].strip(), output[cut:].strip()
