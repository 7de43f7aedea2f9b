"""Answers: the model's final answer in its output, the one CoT/answer split, and matching to gold.

Generate, evaluate, base-model's held-out accuracy and the served pyfunc model all use these
functions, so they read an output the same way. Plain numbers (GSM8K, the synthetic set) are
compared on a fast numeric path; LaTeX and symbolic answers (MATH: fractions, roots, pi,
intervals, sets, tuples, multiple choice, units) are parsed and verified by math-verify.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_ANSWER_IS = re.compile(
    r"(?:final answer|answer)\s*(?:is|:)\s*:?\s*\$?\s*(-?[\d,]*\.?\d+)", re.IGNORECASE
)
_ANSWER_IS_LATEX = re.compile(r"(?:final answer|answer)\s*(?:is|:)\s*:?\s*\$([^$\n]+)\$", re.IGNORECASE)
_FINAL_LINE = re.compile(r"(?:^|\n)[^\n]*(?:\\boxed\{|final answer|the answer is)", re.IGNORECASE)
# a gold answer with commas is a plain number only when they group thousands ("1,234", not "1,3")
_GROUPED = re.compile(r"^[^,]*\d{1,3}(?:,\d{3})+(?:\.\d+)?[^,]*$")
_TIMEOUT_S = 5


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` in ``text`` (nested braces kept), or None."""
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
    """The model's final answer: last ``\\boxed{}``, else "the answer is N", else "the answer
    is $latex$", else the last number."""
    boxed = last_boxed(text)
    if boxed:
        return boxed
    matches = _ANSWER_IS.findall(text)
    if matches:
        return matches[-1]
    latex = _ANSWER_IS_LATEX.findall(text)
    if latex and latex[-1].strip():
        return latex[-1].strip()
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


def _plain_gold(gold: str) -> float | None:
    """The gold answer as a number when it is a plain one (commas only as thousands separators:
    ``"1,3"`` is the list of 1 and 3, checked by math-verify)."""
    if "," in gold and not _GROUPED.match(gold.strip()):
        return None
    return normalize_number(gold)


def _timeout() -> int | None:
    """math-verify's timeouts use SIGALRM, which works only in the main thread."""
    return _TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


@lru_cache(maxsize=4096)
def parse_answer(text: str) -> tuple[Any, ...]:
    """An answer string parsed by math-verify (LaTeX first, then a plain expression) as
    ``$text$``; empty when nothing parses. Cached: the same gold is parsed once."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse  # heavy (sympy)

    if not text.strip():
        return ()
    config = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    try:
        return tuple(parse(f"${text}$", config, parsing_timeout=_timeout()))
    except Exception:  # math-verify raises many types on unparsable text
        return ()


def parses_as_answer(text: Any) -> bool:
    """True when ``text`` is a plain number or an answer math-verify can parse to an expression."""
    if not isinstance(text, str) or not text.strip():
        return False
    if normalize_number(text) is not None:
        return True
    return any(not isinstance(item, str) for item in parse_answer(text))


def answers_match(prediction: str | None, gold: str) -> bool:
    """Numeric comparison tolerant of commas, ``$``, trailing periods and ``.0`` when both are plain
    numbers; otherwise math-verify decides (``\\frac{1}{2}`` = ``0.5`` = ``1/2``, ``2\\sqrt{5}`` =
    ``\\sqrt{20}``, ``\\text{(B)}`` = ``B``, ``(1,3]``, ``\\{1,2\\}``, ``5\\text{ cm}`` = ``5``)."""
    if prediction is None:
        return False
    pred_value, gold_value = normalize_number(prediction), _plain_gold(gold)
    if pred_value is not None and gold_value is not None:
        return abs(pred_value - gold_value) <= 1e-6 * max(1.0, abs(gold_value))
    from math_verify import verify

    parsed_gold, parsed_prediction = parse_answer(gold), parse_answer(prediction)
    if not parsed_gold or not parsed_prediction:
        return False
    try:
        return bool(verify(list(parsed_gold), list(parsed_prediction), timeout_seconds=_timeout()))
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
