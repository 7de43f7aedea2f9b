"""Inputs of the validate stage as pandas frames, with the derived columns the suites check.

Record-level rules on the text (words kept in order, forced digits and operators kept, numbers
intact, completion = pruned CoT + answer line, ratio tag = g; see ``text_checks.py``) and
cross-record rules (per-ratio mean actual ratio, ratio mix) are computed here in pandas, one derived
column per rule, so that each rule is then checked by a built-in Great Expectations expectation on
that column (see ``suites.py``). A derived check that cannot be computed (e.g. a prompt that is not
a string) is False, never null: GX's column-value expectations skip nulls, so a null would pass.
The number checks hold True or, for a broken record, the line that names it (file, record id, the
number): GX reports it among the unexpected values, and so does the validate report.

Token counts of the pruned records are recounted from their text with the target model's tokenizer
(``tokenskip.core.records.count_tokens``, as prune counted them): the actual ratio comes from the
recount, and the recorded ``cot_tokens`` / ``compressed_tokens`` are checked against it.

Frames (one per suite):

- ``generated_cots``: one row per cot record (artifacts/generate/cot.jsonl).
- ``pruned_cots``: one row per pruned record, all ratios (artifacts/prune/pruned_<g>.jsonl).
- ``pruned_ratios``: one row per ratio (configured or found): records and mean actual ratio
  (recounted compressed tokens / recounted CoT tokens).
- ``training_samples``: one row per sample record (artifacts/prune/samples.jsonl).
- ``training_ratio_mix``: one row per ratio (prune.ratios plus 1.0, or found): share of samples.

Ratio tags are found as ``text_checks.py`` describes (with the target tokenizer's EOS token).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tokenskip.core.answers import normalize_number, parses_as_answer
from tokenskip.core.errors import TokenSkipError
from tokenskip.core.io import read_jsonl
from tokenskip.core.records import COT_FIELDS, PRUNED_FIELDS, SAMPLE_FIELDS, count_tokens
from tokenskip.validate.text_checks import (
    completion_matches,
    digits_in_order,
    forced_tokens_kept,
    number_problem,
    ratio_value,
    tag_matches_ratio,
    words_in_order,
)

PRUNED_PATTERN = re.compile(r"^pruned_(\d+(?:\.\d+)?)\.jsonl$")


@dataclass(frozen=True)
class Inputs:
    """The raw records the validate stage reads."""

    cots: list[dict[str, Any]]
    pruned: list[dict[str, Any]]
    samples: list[dict[str, Any]]


def load_inputs(cot_path: Path, pruned_dir: Path) -> Inputs:
    """Read cot.jsonl, every pruned_<g>.jsonl (records tagged with ``_file``, the path, and
    ``_file_ratio``, its g) and samples.jsonl.

    Missing fields are not errors here: the suites report them. Unreadable files are.
    """
    if not pruned_dir.is_dir():
        raise TokenSkipError(f"{pruned_dir}: pruned folder not found")
    pruned: list[dict[str, Any]] = []
    for path in sorted(pruned_dir.glob("pruned_*.jsonl")):
        match = PRUNED_PATTERN.match(path.name)
        if not match:
            raise TokenSkipError(f"{path}: file name must be pruned_<ratio>.jsonl")
        for record in read_jsonl(path):
            pruned.append({**record, "_file": str(path), "_file_ratio": float(match.group(1))})
    return Inputs(read_jsonl(cot_path), pruned, read_jsonl(pruned_dir / "samples.jsonl"))


def _frame(records: Sequence[dict[str, Any]], fields: Iterable[str]) -> pd.DataFrame:
    """A frame holding at least ``fields`` (absent ones as nulls), object dtype kept."""
    frame = pd.DataFrame.from_records(list(records)) if records else pd.DataFrame()
    for field in fields:
        if field not in frame.columns:
            frame[field] = None
    return frame.astype(object).where(frame.notna(), None)


def _checked(values: Iterable[bool | None]) -> list[bool]:
    """A derived check column: None (could not be computed) counts as a failed check (False)."""
    return [value is True for value in values]


def _is_number(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return math.isfinite(value)
    return normalize_number(str(value)) is not None


def cot_frame(records: Sequence[dict[str, Any]], answers: str = "number") -> pd.DataFrame:
    """generated_cots: the cot records plus ``prediction_is_number`` (``answers`` "number"), or
    ``gold_is_answer`` and ``prediction_is_answer`` (``answers`` "latex": MATH-style answers)."""
    frame = _frame(records, COT_FIELDS)
    if answers == "number":
        frame["prediction_is_number"] = _checked(_is_number(v) for v in frame["prediction"])
    else:
        frame["gold_is_answer"] = [parses_as_answer(v) for v in frame["gold"]]
        frame["prediction_is_answer"] = [parses_as_answer(v) for v in frame["prediction"]]
    return frame


def _actual_ratio(compressed: Any, original: Any) -> float | None:
    try:
        value = float(compressed) / float(original)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return value if math.isfinite(value) else None


def recount(tokenizer: Any, texts: Iterable[Any], cache: dict[str, int]) -> list[int | None]:
    """Token counts of ``texts`` in the target tokenizer (None for a non-string), memoised in
    ``cache`` (a CoT recurs once per ratio)."""
    counts: list[int | None] = []
    for text in texts:
        if not isinstance(text, str):
            counts.append(None)
            continue
        if text not in cache:
            cache[text] = count_tokens(tokenizer, text)
        counts.append(cache[text])
    return counts


def count_matches(recorded: Any, recounted: int | None) -> bool | None:
    """True when a recorded token count equals the recount (None when there is no recount)."""
    if recounted is None:
        return None
    return isinstance(recorded, int | float) and not isinstance(recorded, bool) and recorded == recounted


def _add_recounts(frame: pd.DataFrame, tokenizer: Any) -> None:
    """Recount the CoT and the compressed CoT; add the recounts, ``actual_ratio`` (from the
    recounts) and ``cot_tokens_match_text`` / ``compressed_tokens_match_text``."""
    cache: dict[str, int] = {}
    counts: dict[str, list[int | None]] = {}
    for text, count in (("cot", "cot_tokens"), ("compressed_cot", "compressed_tokens")):
        counts[count] = recount(tokenizer, frame[text], cache)
        frame[f"{count}_recounted"] = pd.Series(counts[count], index=frame.index, dtype=object)
        frame[f"{count}_match_text"] = _checked(
            count_matches(r, n) for r, n in zip(frame[count], counts[count], strict=True))
    frame["actual_ratio"] = pd.Series(
        [_actual_ratio(c, o) for c, o in zip(counts["compressed_tokens"], counts["cot_tokens"], strict=True)],
        index=frame.index, dtype=object)


def _key(value: Any) -> Any:
    """``value`` as a lookup key: None when it is null or unhashable (e.g. an id that is a list)."""
    try:
        hash(value)
    except TypeError:
        return None
    return value


def _generated_by_id(cots: pd.DataFrame) -> dict[Any, dict[str, Any]]:
    """Generated id -> its cot record's ``cot`` and ``gold``."""
    return {
        _key(i): {"cot": c, "gold": g}
        for i, c, g in zip(cots["id"], cots["cot"], cots["gold"], strict=True) if _key(i) is not None
    }


def _numbers_check(original: Any, compressed: Any, every: bool, where: str) -> bool | str:
    """True when the numbers of the compressed CoT are intact (``number_problem``), else the
    first broken number as one line headed by ``where`` (file and record id); False when a text
    is missing."""
    if not isinstance(original, str) or not isinstance(compressed, str):
        return False
    problem = number_problem(original, compressed, every)
    return True if problem is None else f"{where}: {problem}"


def _where(file: Any, file_ratio: Any, record_id: Any) -> str:
    """``<file>: record <id>`` (the file from its ratio when the record came without one)."""
    if file is None:
        file = "pruned records" if file_ratio is None else f"pruned_{file_ratio:g}.jsonl"
    return f"{file}: record {record_id!r}"


def pruned_frame(
    records: Sequence[dict[str, Any]], cots: pd.DataFrame, tokenizer: Any, force_tokens: Sequence[str] = ()
) -> pd.DataFrame:
    """pruned_cots: pruned records plus the token recounts (see ``_add_recounts``),
    ``actual_ratio``, ``in_generated`` (id is a generated CoT), ``cot_matches_generated`` (the
    record's CoT is that generated CoT), ``ratio_matches_file`` and the text rules
    ``words_in_order``, ``digits_in_order``, ``forced_tokens_kept`` (of ``force_tokens``),
    ``numbers_all_kept`` and ``numbers_unchanged`` (True, or the first broken number named with
    its file and record id: see ``text_checks.number_problem``; with and without
    prune.force_digits)."""
    frame = _frame(records, (*PRUNED_FIELDS, "_file", "_file_ratio"))
    generated = _generated_by_id(cots)
    _add_recounts(frame, tokenizer)
    texts = list(zip(frame["cot"], frame["compressed_cot"], strict=True))
    frame["words_in_order"] = _checked(words_in_order(o, c) for o, c in texts)
    frame["digits_in_order"] = _checked(digits_in_order(o, c) for o, c in texts)
    frame["forced_tokens_kept"] = _checked(forced_tokens_kept(o, c, force_tokens) for o, c in texts)
    where = [_where(*row) for row in zip(frame["_file"], frame["_file_ratio"], frame["id"], strict=True)]
    for column, every in (("numbers_all_kept", True), ("numbers_unchanged", False)):
        checks = [_numbers_check(o, c, every, w) for (o, c), w in zip(texts, where, strict=True)]
        frame[column] = pd.Series(checks, index=frame.index, dtype=object)
    frame["in_generated"] = _checked(None if _key(i) is None else _key(i) in generated for i in frame["id"])
    frame["cot_matches_generated"] = _checked(
        None if _key(i) not in generated else isinstance(c, str) and c == generated[_key(i)]["cot"]
        for i, c in zip(frame["id"], frame["cot"], strict=True))
    frame["ratio_matches_file"] = _checked(
        None if r is None or f is None else ratio_value(r) == ratio_value(f)
        for r, f in zip(frame["ratio"], frame["_file_ratio"], strict=True))
    return frame.drop(columns=["_file", "_file_ratio"])


def _ratio_rows(ratios: Iterable[Any], expected: Sequence[float]) -> list[float]:
    """Expected ratios plus any other ratio found, sorted."""
    found = {ratio_value(r) for r in ratios} - {None}
    return sorted(found | {ratio_value(g) for g in expected})


def pruned_ratio_frame(pruned: pd.DataFrame, ratios: Sequence[float]) -> pd.DataFrame:
    """pruned_ratios: per ratio, ``records`` and ``mean_actual_ratio`` (over the records whose
    recounted ratio is defined) and its absolute deviation from the target, ``ratio_error`` (null
    when there is no such record; such records fail their own record-level expectations)."""
    keys = [ratio_value(r) for r in pruned["ratio"]]
    rows = []
    for g in _ratio_rows(keys, ratios):
        values = [a for k, a in zip(keys, pruned["actual_ratio"], strict=True) if k == g and a is not None]
        mean = sum(values) / len(values) if values else None
        rows.append({
            "ratio": g, "records": keys.count(g), "mean_actual_ratio": mean,
            "ratio_error": None if mean is None else abs(mean - g),
        })
    return _frame(rows, ("ratio", "records", "mean_actual_ratio", "ratio_error"))


def _training_cot(
    sample_id: Any, ratio: Any, generated: dict[Any, dict[str, Any]], compressed: dict[tuple[Any, Any], Any]
) -> Any:
    """The CoT a sample should train on: the compressed CoT of (id, g) for g < 1, the generated CoT
    at g = 1 (None when there is none)."""
    g = ratio_value(ratio)
    if _key(sample_id) is None or g is None:
        return None
    if g >= 1.0:
        return generated.get(sample_id, {}).get("cot")
    return compressed.get((sample_id, g))


def samples_frame(
    records: Sequence[dict[str, Any]], cots: pd.DataFrame, pruned: pd.DataFrame, eos: str | None = None
) -> pd.DataFrame:
    """training_samples: sample records plus ``tag_matches_ratio`` (one ratio tag equal to g iff
    g < 1, written around ``eos`` when given) and ``completion_matches`` (the completion is
    ``format_completion`` of the CoT pruned to g -- the generated CoT at g = 1 -- and the gold
    answer of its cot record)."""
    frame = _frame(records, SAMPLE_FIELDS)
    generated = _generated_by_id(cots)
    compressed = {
        (_key(i), ratio_value(r)): c
        for i, r, c in zip(pruned["id"], pruned["ratio"], pruned["compressed_cot"], strict=True)
        if _key(i) is not None
    }
    frame["tag_matches_ratio"] = _checked(
        tag_matches_ratio(p, r, eos) for p, r in zip(frame["prompt"], frame["ratio"], strict=True))
    frame["completion_matches"] = _checked(
        completion_matches(completion, _training_cot(i, r, generated, compressed),
                           generated.get(_key(i), {}).get("gold"))
        for i, r, completion in zip(frame["id"], frame["ratio"], frame["completion"], strict=True))
    return frame


def ratio_mix_frame(samples: pd.DataFrame, ratios: Sequence[float]) -> pd.DataFrame:
    """training_ratio_mix: per ratio (``ratios`` plus any found), ``samples`` and ``share``."""
    keys = [ratio_value(r) for r in samples["ratio"]]
    total = len(keys)
    rows = [
        {"ratio": g, "samples": keys.count(g), "share": keys.count(g) / total if total else 0.0}
        for g in _ratio_rows(keys, ratios)
    ]
    return _frame(rows, ("ratio", "samples", "share"))


def build_frames(
    inputs: Inputs, prune_ratios: Sequence[float], tokenizer: Any, force_tokens: Sequence[str] = (),
    answers: str = "number",
) -> dict[str, pd.DataFrame]:
    """All five frames, keyed by suite name; ``tokenizer`` is the target model's (it recounts the
    pruned records' tokens; its EOS token writes the ratio tags); ``force_tokens`` are the words
    prune always keeps (prune.force_tokens); ``answers`` is the kind of answer (see cot_frame)."""
    cots = cot_frame(inputs.cots, answers)
    pruned = pruned_frame(inputs.pruned, cots, tokenizer, force_tokens)
    samples = samples_frame(inputs.samples, cots, pruned, getattr(tokenizer, "eos_token", None))
    return {
        "generated_cots": cots,
        "pruned_cots": pruned,
        "pruned_ratios": pruned_ratio_frame(pruned, prune_ratios),
        "training_samples": samples,
        "training_ratio_mix": ratio_mix_frame(samples, [*prune_ratios, 1.0]),
    }
