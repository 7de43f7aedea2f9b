"""Word-level importance pruning of a chain of thought (pure functions, no model).

A CoT is split into words (units kept or dropped whole), every word gets an importance score from
a scorer (see :mod:`tokenskip.prune.scorers`), and :func:`prune_to_ratio` keeps the highest-scoring
share g of it, in the original order, joined back with the original spacing (no space before
punctuation; line breaks of dropped stretches kept).

Words (``_WORD``, first rule that matches):

- a LaTeX command with its arguments, ``\\frac{1}{2}``, ``\\sqrt[3]{8}``, ``\\boxed{42}``,
  ``\\times``, or a ``^{..}`` / ``_{..}`` group (braces nested up to ``BRACE_DEPTH`` deep);
- a number: an optional sign (``-`` or U+2212 glued to the digits and not right after a word
  character, a closing bracket, ``.`` or ``%``: the ``-`` of ``2-.5`` is an operator), digits with
  ``.``, ``,`` or ``:`` separators or a leading ``.`` (``.5``), an exponent (``1.5e-3``) and ``%``;
- a word, which may hold an apostrophe (``_`` before ``{`` starts a group instead);
- any other non-space character (a ``_`` before an unclosed ``{`` included).

The join never lets kept words merge into other words: where gluing two kept words (as the CoT
had them) would re-split differently (``2`` ``.5`` into ``2.5``, ``-`` ``5`` into ``-5``), a
space separates them. So the pruned text re-splits into exactly the kept words: a kept number is
the CoT's number, unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

BRACE_DEPTH = 4


def _braces(depth: int) -> str:
    """A ``{..}`` group with braces nested up to ``depth`` deep."""
    group = r"\{[^{}]*\}"
    for _ in range(depth - 1):
        group = r"\{(?:[^{}]|" + group + r")*\}"
    return group


_GROUP = _braces(BRACE_DEPTH)
_LATEX = r"\\[A-Za-z]+\*?(?:\[[^\[\]{}\s]*\](?=\{))?(?:" + _GROUP + r")*|[\^_]" + _GROUP
_NUMBER = r"(?:(?<![\w.)\]}%])[-−])?(?:\d+(?:[.,:]\d+)*|(?<![\w.])\.\d+)(?:[eE][-+−]?\d+)?%?"
_LETTERS = r"(?:[^\W_]|_(?!\{))+"
# The word rule (module docstring); validate replicates it (tokenskip.validate.text_checks.WORD).
_WORD = re.compile(f"{_LATEX}|{_NUMBER}|{_LETTERS}(?:['’]{_LETTERS})*|[^\\w\\s]|_")
_DIGIT = re.compile(r"\d")
_OPENING = set("([{$\\\"'“‘")


@dataclass(frozen=True)
class Word:
    """One word of a text: its characters, the whitespace before it and its character span."""

    text: str
    space: str
    start: int
    end: int


@dataclass(frozen=True)
class PruneResult:
    """The pruned text, which words were kept, and how the budget went."""

    text: str
    kept: list[bool]
    forced_words: int
    over_budget: bool


def split_words(text: str) -> list[Word]:
    """Split ``text`` into words, remembering the whitespace before each (see module docstring)."""
    words: list[Word] = []
    previous_end = 0
    for match in _WORD.finditer(text):
        gap = text[previous_end : match.start()]
        words.append(Word(match.group(), gap, match.start(), match.end()))
        previous_end = match.end()
    return words


def _is_punctuation(word: str) -> bool:
    return not any(ch.isalnum() or ch == "_" for ch in word)


def _separator(words: Sequence[Word], previous: int, current: int) -> str:
    """Whitespace to put before ``words[current]`` when the last kept word is ``words[previous]``."""
    if previous < 0:
        return ""
    own = words[current].space
    if previous == current - 1:
        return own
    if not own and _is_punctuation(words[current].text) and words[current].text not in _OPENING:
        return ""
    gaps = [words[i].space for i in range(previous + 1, current + 1)]
    with_newline = [gap for gap in gaps if "\n" in gap]
    if with_newline:
        return with_newline[-1]
    if words[previous].text in _OPENING and not gaps[0]:
        return ""  # "(" stays glued to the next kept word, as it was to the dropped one
    return " " if any(gaps) else ""


def join_words(words: Sequence[Word], kept: Sequence[bool] | None = None) -> str:
    """Join the kept words (all when ``kept`` is None) with the original spacing rules; a word
    glued to the last kept one is parted from it by a space where the glued stretch would re-split
    into other words (``2`` ``3`` once ``^`` is dropped, ``2`` ``.5`` once ``-`` is)."""
    parts: list[str] = []
    run: list[str] = []  # the kept words since the last whitespace: re-split together
    previous = -1
    for index, word in enumerate(words):
        if kept is not None and not kept[index]:
            continue
        separator = _separator(words, previous, index)
        if not separator and run and _WORD.findall("".join(run) + word.text) != [*run, word.text]:
            separator = " "
        run = [*run, word.text] if not separator else [word.text]
        parts.append(separator + word.text)
        previous = index
    return "".join(parts)


def forced_mask(words: Sequence[Word], force_digits: bool, force_tokens: Sequence[str]) -> list[bool]:
    """True for words that must survive pruning: any word with a digit, and the ``force_tokens``."""
    tokens = set(force_tokens)
    return [(force_digits and bool(_DIGIT.search(w.text))) or w.text in tokens for w in words]


def select_words(
    scores: Sequence[float],
    ratio: float,
    forced: Sequence[bool] | None = None,
    weights: Sequence[float] | None = None,
) -> tuple[list[bool], bool]:
    """Choose which words to keep: forced words first, then by score (ties: earlier first)
    while the kept weight stays within ``ratio`` x total weight (rounded to the nearest unit).

    Returns the keep mask and whether the forced words alone exceed the budget.
    """
    n = len(scores)
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    forced = list(forced) if forced is not None else [False] * n
    weights = list(weights) if weights is not None else [1.0] * n
    if len(forced) != n or len(weights) != n:
        raise ValueError("scores, forced and weights must have the same length")
    if ratio >= 1.0:
        return [True] * n, False
    budget = ratio * sum(weights)
    kept = list(forced)
    used = sum(w for w, f in zip(weights, forced, strict=True) if f)
    over_budget = used > budget + 0.5
    for index in sorted(range(n), key=lambda i: (-scores[i], i)):
        if kept[index]:
            continue
        if used + weights[index] <= budget + 0.5:
            kept[index] = True
            used += weights[index]
    return kept, over_budget


def prune_to_ratio(
    words: Sequence[Word],
    scores: Sequence[float],
    ratio: float,
    forced: Sequence[bool] | None = None,
    weights: Sequence[float] | None = None,
) -> PruneResult:
    """Keep the highest-scoring share ``ratio`` of ``words`` (by count, or by ``weights`` such as
    target-tokenizer tokens per word), in the original order; ``forced`` words are always kept.

    g = 1.0 returns the text unchanged. When the forced words alone exceed the budget, all of
    them are kept, nothing else is, and ``over_budget`` is True.
    """
    if len(scores) != len(words):
        raise ValueError(f"{len(words)} words but {len(scores)} scores")
    kept, over_budget = select_words(scores, ratio, forced, weights)
    forced_count = sum(1 for f in (forced or []) if f)
    return PruneResult(join_words(words, kept), kept, forced_count, over_budget)


def token_word_map(offsets: Sequence[tuple[int, int]], words: Sequence[Word]) -> list[list[int]]:
    """For each word, the indices of the tokens whose character span overlaps it.

    ``offsets`` are (start, end) character spans of tokens in the same text (fast tokenizers'
    ``offset_mapping``); zero-width spans (special tokens) are ignored.
    """
    mapping: list[list[int]] = [[] for _ in words]
    starts = [w.start for w in words]
    first = 0
    for token_index, (start, end) in enumerate(offsets):
        if end <= start:
            continue
        while first < len(words) and words[first].end <= start:
            first += 1
        index = first
        while index < len(words) and starts[index] < end:
            mapping[index].append(token_index)
            index += 1
    return mapping


def word_token_weights(tokenizer: Any, text: str, words: Sequence[Word]) -> list[float]:
    """Target-tokenizer tokens per word (a token straddling words is shared equally)."""
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    weights = [0.0] * len(words)
    owners: dict[int, list[int]] = {}
    for word_index, tokens in enumerate(token_word_map(offsets, words)):
        for token in tokens:
            owners.setdefault(token, []).append(word_index)
    for shared in owners.values():
        for word_index in shared:
            weights[word_index] += 1.0 / len(shared)
    return weights


CALIBRATION_STEPS = 6


def calibrated_prune(
    words: Sequence[Word],
    scores: Sequence[float],
    ratio: float,
    forced: Sequence[bool],
    weights: Sequence[float],
    cot_tokens: int,
    count_tokens: Callable[[str], int],
) -> tuple[PruneResult, int]:
    """Prune to ``ratio`` measured on the re-tokenized text: the word budget ignores tokens the
    joined text gains (line breaks, merges at new word boundaries), so while the kept share
    overshoots the target, the budget is lowered by the overshoot (a few steps at most).
    Returns the pruning result and its token count."""
    budget = ratio
    result = prune_to_ratio(words, scores, budget, forced, weights)
    kept_tokens = count_tokens(result.text)
    for _ in range(CALIBRATION_STEPS):
        overshoot = kept_tokens / max(cot_tokens, 1) - ratio
        if overshoot <= 0.005 or result.over_budget or budget - overshoot <= 0:
            break
        budget -= overshoot
        result = prune_to_ratio(words, scores, budget, forced, weights)
        kept_tokens = count_tokens(result.text)
    return result, kept_tokens


def prune_record(
    record: dict[str, Any],
    scores: Sequence[float],
    ratio: float,
    forced: Sequence[bool],
    weights: Sequence[float],
    count_tokens: Callable[[str], int],
) -> dict[str, Any]:
    """The ``pruned`` record (DESIGN.md) of one cot record at ``ratio``."""
    words = split_words(record["cot"])
    cot_tokens = count_tokens(record["cot"])
    result, kept_tokens = calibrated_prune(words, scores, ratio, forced, weights, cot_tokens, count_tokens)
    return {
        "id": record["id"],
        "ratio": ratio,
        "cot": record["cot"],
        "compressed_cot": result.text,
        "cot_tokens": cot_tokens,
        "compressed_tokens": kept_tokens,
        "forced_words": result.forced_words,
        "over_budget": result.over_budget,
        "digits_total": sum(1 for w in words if _DIGIT.search(w.text)),
        "digits_kept": sum(1 for w, k in zip(words, result.kept, strict=True) if k and _DIGIT.search(w.text)),
    }
