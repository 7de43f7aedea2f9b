"""GSM8K-format loaders and answer checking shared by every stage.

A GSM8K record is ``{"question": ..., "answer": "...step by step...\\n#### 72"}``;
``<<48/2=24>>`` is calculator markup and is stripped from solutions.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from tokenskip.errors import TokenSkipError
from tokenskip.io import read_jsonl

GOLD_MARK = "#### "
_CALC_MARKUP = re.compile(r"<<[^<>]*>>")
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_ANSWER_IS = re.compile(
    r"(?:final answer|answer)\s*(?:is|:)\s*:?\s*\$?\s*(-?[\d,]*\.?\d+)", re.IGNORECASE
)
_FINAL_LINE = re.compile(r"(?:^|\n)[^\n]*(?:\\boxed\{|final answer|the answer is)", re.IGNORECASE)


@dataclass(frozen=True)
class Problem:
    """One question with its gold answer and (when known) its reference solution."""

    id: str
    question: str
    gold: str
    solution: str = ""

    def to_record(self) -> dict[str, str]:
        """The ``problem`` record of DESIGN.md (id, question, gold)."""
        return {k: v for k, v in asdict(self).items() if k != "solution"}


def strip_calculator_markup(text: str) -> str:
    """Remove GSM8K calculator annotations such as ``<<48/2=24>>``."""
    return _CALC_MARKUP.sub("", text)


def split_gold(answer: str) -> tuple[str, str]:
    """Split a GSM8K answer into (solution without markup, gold answer after ``#### ``)."""
    if GOLD_MARK not in answer:
        raise ValueError("no '#### ' gold marker")
    solution, gold = answer.rsplit(GOLD_MARK, 1)
    gold = gold.strip()
    if not gold:
        raise ValueError("empty gold answer after '#### '")
    return strip_calculator_markup(solution).strip(), gold


def load_problems(path: str | Path, id_prefix: str | None = None) -> list[Problem]:
    """Load a GSM8K-format JSONL file into Problems with ids ``<prefix>-<index>``.

    Raises TokenSkipError naming the file, line and field for malformed records.
    """
    source = Path(path)
    prefix = id_prefix or source.stem
    problems: list[Problem] = []
    for index, record in enumerate(read_jsonl(source, required=("question", "answer"))):
        for field in ("question", "answer"):
            if not isinstance(record[field], str) or not record[field].strip():
                raise TokenSkipError(f"{source}: record {index + 1}: field '{field}' is empty")
        try:
            solution, gold = split_gold(record["answer"])
        except ValueError as exc:
            raise TokenSkipError(f"{source}: record {index + 1}: field 'answer': {exc}") from None
        problems.append(Problem(f"{prefix}-{index:05d}", record["question"].strip(), gold, solution))
    return problems


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
