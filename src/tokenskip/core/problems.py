"""Problem loaders: GSM8K format, MATH format, and any JSON Lines file with a field mapping.

A GSM8K record is ``{"question": ..., "answer": "...step by step...\\n#### 72"}``;
``<<48/2=24>>`` is calculator markup and is stripped from solutions. A MATH / MATH-500 record is
``{"problem", "solution"`` (ending in ``\\boxed{...}``), optional ``"answer", "level", "subject"}``.
``data.dataset: jsonl`` reads any file through ``data.fields``. :func:`load_dataset` picks the loader
and the file from params.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tokenskip.core.answers import last_boxed
from tokenskip.core.errors import TokenSkipError
from tokenskip.core.io import read_jsonl
from tokenskip.core.params import DataParams

GOLD_MARK = "#### "
_CALC_MARKUP = re.compile(r"<<[^<>]*>>")
_LEVEL = re.compile(r"^\s*level\s+", re.IGNORECASE)
# data.dataset: math reads these fields (MATH and MATH-500)
MATH_FIELDS: dict[str, str | None] = {
    "question": "problem", "solution": "solution", "answer": "answer", "level": "level", "subject": "subject",
}


@dataclass(frozen=True)
class Problem:
    """One question with its gold answer and (when known) its reference solution."""

    id: str
    question: str
    gold: str
    solution: str = ""
    level: str = ""
    subject: str = ""

    def to_record(self) -> dict[str, str]:
        """The ``problem`` record of DESIGN.md (id, question, gold; level and subject when known)."""
        return {k: v for k, v in asdict(self).items() if k != "solution" and (v or k == "gold")}


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
            where = f"{source}: record {index + 1}: field '{field}'"
            if not isinstance(record[field], str):  # a number or a list is reported as what it is
                raise TokenSkipError(f"{where} is not text (got {type(record[field]).__name__})")
            if not record[field].strip():
                raise TokenSkipError(f"{where} is empty")
        try:
            solution, gold = split_gold(record["answer"])
        except ValueError as exc:
            raise TokenSkipError(f"{source}: record {index + 1}: field 'answer': {exc}") from None
        problems.append(Problem(f"{prefix}-{index:05d}", record["question"].strip(), gold, solution))
    return problems


def gold_from_solution(solution: str) -> str | None:
    """The final answer written in a worked solution: its last ``\\boxed{}``, else the text after
    its last ``#### ``; None when it has neither."""
    boxed = last_boxed(solution)
    if boxed:
        return boxed
    if GOLD_MARK in solution:
        return solution.rsplit(GOLD_MARK, 1)[1].strip() or None
    return None


def _text(record: dict[str, Any], field: str | None, where: str, required: bool = False) -> str:
    """The record's ``field`` as stripped text ("" when unmapped or absent, unless ``required``);
    numbers become text, anything else is an error naming the field."""
    value = record.get(field) if field else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if value is not None and not isinstance(value, str):
        raise TokenSkipError(f"{where}: field '{field}' is not text (got {type(value).__name__})")
    if required and not (value or "").strip():
        raise TokenSkipError(f"{where}: field '{field}' is empty")
    return (value or "").strip()


def _level(text: str) -> str:
    """``"Level 3"`` (MATH) and ``3`` (MATH-500) are both level ``"3"``."""
    return _LEVEL.sub("", text).strip()


def mapped_problem(record: dict[str, Any], fields: Mapping[str, str | None], pid: str, where: str) -> Problem:
    """One Problem from a record read through ``fields`` (question, solution, answer, level,
    subject). Gold: the answer field, else the solution's final answer; neither is one error."""
    question = _text(record, fields["question"], where, required=True)
    solution = _text(record, fields.get("solution"), where)
    gold = _text(record, fields.get("answer"), where) or gold_from_solution(solution)
    if not gold:
        named, answer = fields.get("solution"), fields.get("answer")
        raise TokenSkipError(f"{where}: field '{named or answer}': no gold answer (no '{answer}' field, "
                             f"no \\boxed{{}} or '#### ' in the solution)")
    if GOLD_MARK in solution and not last_boxed(solution):
        solution = strip_calculator_markup(solution.rsplit(GOLD_MARK, 1)[0]).strip()
    level = _level(_text(record, fields.get("level"), where))
    return Problem(pid, question, gold, solution, level, _text(record, fields.get("subject"), where))


def load_mapped(
    path: str | Path, fields: Mapping[str, str | None], id_prefix: str | None = None
) -> list[Problem]:
    """Load a JSON Lines file whose records are read through ``fields`` (``MATH_FIELDS`` for MATH),
    with ids ``<prefix>-<index>``. A missing question or gold answer names the file, record and field."""
    source = Path(path)
    prefix = id_prefix or source.stem
    records = read_jsonl(source, required=(fields["question"],))
    return [mapped_problem(record, fields, f"{prefix}-{index:05d}", f"{source}: record {index + 1}")
            for index, record in enumerate(records)]


def dataset_file(data: DataParams, data_dir: Path, split: str) -> Path:
    """``data.<split>_path`` when set (relative to the working directory, i.e. the repository
    root under DVC), else ``<data_dir>/<dataset>/<split>.jsonl``."""
    configured = data.train_path if split == "train" else data.test_path
    return Path(configured) if configured else data_dir / data.dataset / f"{split}.jsonl"


def load_file(data: DataParams, path: Path, split: str) -> list[Problem]:
    """Every problem of ``path`` read in ``data.dataset``'s format, ids ``<dataset>-<split>-<index>``."""
    prefix = f"{data.dataset}-{split}"
    if data.dataset == "math":
        return load_mapped(path, MATH_FIELDS, prefix)
    if data.dataset == "jsonl":
        return load_mapped(path, data.fields.model_dump() if data.fields else {}, prefix)
    return load_problems(path, prefix)


def load_dataset(data: DataParams, data_dir: Path, split: str) -> list[Problem]:
    """The ``split`` ("train" or "test") of ``data.dataset`` (see :func:`dataset_file`), cut to
    ``data.n_train`` / ``data.n_test``."""
    problems = load_file(data, dataset_file(data, data_dir, split), split)
    return problems[: data.n_train if split == "train" else data.n_test]
