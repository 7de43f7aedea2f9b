"""GSM8K-format problem loaders.

A GSM8K record is ``{"question": ..., "answer": "...step by step...\\n#### 72"}``;
``<<48/2=24>>`` is calculator markup and is stripped from solutions.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.io import read_jsonl

GOLD_MARK = "#### "
_CALC_MARKUP = re.compile(r"<<[^<>]*>>")


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
