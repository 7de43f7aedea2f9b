"""Record-level rules checked on the text itself (pure functions, no pandas, no Great Expectations).

Each returns True (holds), False (broken) or None (cannot be checked: a field is not a string);
``frames.py`` turns None into a failed check.

Words: a text is split into words exactly as prune splits it (``tokenskip.prune.pruning.split_words``,
replicated here because validate may not import prune): a LaTeX command with its ``{..}`` arguments
(``\\frac{1}{2}``) or a ``^{..}`` / ``_{..}`` group is one word; so is a number with its sign (not
the operator of ``2-.5``), separators, leading ``.``, exponent and ``%`` (``-.25``, ``1,234.5``,
``1.5e-3``, ``50%``); a word may hold an apostrophe; any other non-space character is a word of its
own. Prune joins the kept words back with whitespace only (none before punctuation that had none,
none after an opening bracket, none between words that no space separated in the CoT, a space where
gluing would re-split them), so a compressed CoT is the CoT's words, a subsequence in their original
order, separated by whitespace or nothing (``words_in_order``), and re-splits into exactly them.

Numbers: the words holding a digit (numbers, LaTeX groups such as ``\\frac{1}{2}``, words such
as ``x2``), as written. Prune keeps or drops each whole, so every number of a compressed CoT is a
number of its CoT, unchanged and in order, and with prune.force_digits all of them are there
(``number_problem``).

Ratio tag: ``<eos>g<eos>`` after the question (``tokenskip.core.prompts.ratio_tag``), only for g < 1.
With the target tokenizer's EOS token known, a tag is ``eos + number + eos``; without it, a number
wrapped on both sides by the same angle-bracketed special token without spaces, e.g.
``<|endoftext|>0.5<|endoftext|>`` or ``</s>0.7</s>`` (regex ``RATIO_TAG``).
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from tokenskip.core.prompts import format_completion, ratio_tag

BRACE_DEPTH = 4


def _braces(depth: int) -> str:
    """A ``{..}`` group with braces nested up to ``depth`` deep."""
    group = r"\{[^{}]*\}"
    for _ in range(depth - 1):
        group = r"\{(?:[^{}]|" + group + r")*\}"
    return group


_GROUP = _braces(BRACE_DEPTH)
_LATEX = r"\\[A-Za-z]+\*?(?:\[[^\[\]{}\s]*\](?=\{))?(?:" + _GROUP + r")*|[\^_]" + _GROUP
_NUMBER_WORD = r"(?:(?<![\w.)\]}%])[-−])?(?:\d+(?:[.,:]\d+)*|(?<![\w.])\.\d+)(?:[eE][-+−]?\d+)?%?"
_LETTERS = r"(?:[^\W_]|_(?!\{))+"
# The word rule of tokenskip.prune.pruning (_WORD): keep the two in step.
WORD = re.compile(f"{_LATEX}|{_NUMBER_WORD}|{_LETTERS}(?:['’]{_LETTERS})*|[^\\w\\s]|_")
RATIO_TAG = re.compile(r"(<[^<>\s]{1,64}>)(\d+(?:\.\d+)?)\1")
_NUMBER = r"(\d+(?:\.\d+)?)"
_DIGIT = re.compile(r"\d")
_SPACE = re.compile(r"\s*")
_WORD_CHAR = re.compile(r"\w")


def ratio_value(value: Any) -> float | None:
    """A ratio as a float rounded to 6 places (None when not a number)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else round(number, 6)


def split_words(text: str) -> list[str]:
    """The words of ``text``, split as prune splits them (see the module docstring)."""
    return WORD.findall(text)


def _positions(words: Sequence[str]) -> dict[str, list[int]]:
    """Word -> the (sorted) indices where it occurs."""
    positions: dict[str, list[int]] = {}
    for index, word in enumerate(words):
        positions.setdefault(word, []).append(index)
    return positions


def _runs(text: str) -> list[int]:
    """Per word of ``text``: the index of its run, a stretch of words with no whitespace between."""
    runs: list[int] = []
    previous_end = None
    for match in WORD.finditer(text):
        glued = previous_end is not None and match.start() == previous_end
        runs.append(runs[-1] if glued else len(runs))
        previous_end = match.end()
    return runs


def _first_matches(text: str, p: int, start: int, positions: dict[str, list[int]],
                   lengths: Sequence[int]) -> list[tuple[int, str]]:
    """(index, word) of the first occurrence at or after ``start`` of each word that ``text``
    holds at ``p``; of every such occurrence where a word character follows the word's last one
    (only a word of the same run may follow it: which occurrence matters, ``3rd`` of ``3 3rd``)."""
    moves = []
    for length in lengths:
        end = p + length
        if end > len(text):
            break
        occurrences = positions.get(text[p:end], [])
        at = bisect.bisect_left(occurrences, start)
        glued = end < len(text) and _WORD_CHAR.match(text, end - 1) and _WORD_CHAR.match(text, end)
        moves += [(index, text[p:end]) for index in occurrences[at : None if glued else at + 1]]
    return moves


def _glued_matches(text: str, p: int, states: set[int], words: Sequence[str],
                   runs: Sequence[int]) -> list[tuple[int, str]]:
    """(index, word) of the words ``text`` holds at ``p`` that prune may glue to the last matched
    word (index ``i - 1`` for each state ``i``): words of the same run, nothing but words between."""
    moves = []
    for i in states:
        k = i
        while 0 < i and k < len(words) and runs[k] == runs[i - 1]:
            if text.startswith(words[k], p):
                moves.append((k, words[k]))
            k += 1
    return moves


def words_in_order(original: Any, compressed: Any) -> bool | None:
    """True when ``compressed`` is words of ``original`` in their original order (a subsequence:
    none added, none repeated, none moved), separated by whitespace or nothing; two word characters
    meet without a space only where no space separated them in ``original`` (``2^3`` may give
    ``2 3``, ``3*x`` may give ``3x``; ``Tom has`` never gives ``Tomhas``).

    Dynamic programming over the compressed text: ``reach[p]`` holds the indices of the original's
    words from which the rest may be drawn once ``compressed[:p]`` is matched. Matching characters
    rather than a re-split of the compressed text is lenient on glued words (``1`` ``.`` ``2`` of
    ``a 1 b.2`` written ``1.2`` passes here; ``number_problem`` fails it: ``1.2`` is not a number
    of the CoT). Where a space or punctuation separates, the smallest index allows all that a
    larger one does, so only it is followed.
    """
    if not isinstance(original, str) or not isinstance(compressed, str):
        return None
    words, runs = split_words(original), _runs(original)
    positions, lengths = _positions(words), sorted({len(word) for word in words})
    reach: dict[int, set[int]] = {_SPACE.match(compressed).end(): {0}}
    for p in range(len(compressed)):
        if p not in reach:
            continue
        if p > 0 and _WORD_CHAR.match(compressed, p - 1) and _WORD_CHAR.match(compressed, p):
            moves = _glued_matches(compressed, p, reach[p], words, runs)
        else:
            moves = _first_matches(compressed, p, min(reach[p]), positions, lengths)
        for index, word in moves:
            reach.setdefault(_SPACE.match(compressed, p + len(word)).end(), set()).add(index + 1)
    return len(compressed) in reach


def digits_in_order(original: Any, compressed: Any) -> bool | None:
    """True when the digits of ``original`` appear in ``compressed`` in the same order
    (as a subsequence); None (cannot be checked) when either is not a string."""
    if not isinstance(original, str) or not isinstance(compressed, str):
        return None
    remaining = iter(_DIGIT.findall(compressed))
    return all(digit in remaining for digit in _DIGIT.findall(original))


def forced_tokens_kept(original: Any, compressed: Any, force_tokens: Iterable[str]) -> bool | None:
    """True when every word of ``original`` that is one of ``force_tokens`` (prune keeps them all:
    operators, currency signs) appears in ``compressed`` in the same order; both are split into
    words as prune splits them. None when either text is not a string."""
    if not isinstance(original, str) or not isinstance(compressed, str):
        return None
    tokens = set(force_tokens)
    remaining = iter(word for word in split_words(compressed) if word in tokens)
    return all(word in remaining for word in split_words(original) if word in tokens)


def ratio_tags(prompt: str, eos: str | None = None) -> list[str]:
    """The ratio tags in ``prompt``, in order, as written (``<eos>g<eos>``): tags around ``eos``
    when given, else any tag ``RATIO_TAG`` finds."""
    if eos:
        pattern = re.compile(re.escape(eos) + _NUMBER + re.escape(eos))
        return [match.group(0) for match in pattern.finditer(prompt)]
    return [match.group(0) for match in RATIO_TAG.finditer(prompt)]


def tag_matches_ratio(prompt: Any, ratio: Any, eos: str | None = None) -> bool | None:
    """True when ``prompt`` holds exactly one ratio tag, whose value is g, if g < 1, and no tag if
    g = 1. With ``eos`` (the target tokenizer's EOS token) the tag must be exactly
    ``ratio_tag(eos, g)``, as prune wrote it; without it, any ``<x>g<x>`` wrapper is accepted."""
    g = ratio_value(ratio)
    if not isinstance(prompt, str) or g is None:
        return None
    tags = ratio_tags(prompt, eos)
    if g >= 1.0:
        return not tags
    if len(tags) != 1:
        return False
    if eos:
        return tags[0] == ratio_tag(eos, float(ratio))
    match = RATIO_TAG.fullmatch(tags[0])
    return match is not None and ratio_value(match.group(2)) == g


def completion_matches(completion: Any, cot: Any, gold: Any) -> bool | None:
    """True when ``completion`` is exactly ``format_completion(cot, gold)`` (the training target:
    the CoT at the sample's ratio, then the final-answer line); None when the CoT or the gold
    answer is missing."""
    if not isinstance(cot, str) or gold is None or isinstance(gold, dict | list):
        return None
    return isinstance(completion, str) and completion == format_completion(cot, str(gold))


def numbers(text: str) -> list[str]:
    """The numbers of ``text`` (module docstring): its words holding a digit, as written, in order."""
    return [word for word in split_words(text) if _DIGIT.search(word)]


def _all_kept(theirs: Sequence[str], ours: Sequence[str]) -> str | None:
    for k, (expected, found) in enumerate(zip(theirs, ours, strict=False)):
        if expected != found:
            place = f"number {expected!r} ({k + 1} of {len(theirs)} in the CoT)"
            if theirs[k + 1 : k + 2] == [found]:  # the compressed CoT goes on with the next one
                return f"{place} is missing from the compressed CoT"
            return f"{place} is {found!r} in the compressed CoT"
    if len(theirs) > len(ours):
        return f"number {theirs[len(ours)]!r} ({len(ours) + 1} of {len(theirs)} in the CoT) is missing " \
               "from the compressed CoT"
    if len(ours) > len(theirs):
        return f"number {ours[len(theirs)]!r} of the compressed CoT is not a number of the CoT"
    return None


def number_problem(original: str, compressed: str, every: bool) -> str | None:
    """None when every number of ``compressed`` is a number of ``original``, unchanged and in
    order, and, with ``every`` (prune.force_digits), every number of ``original`` is there;
    else one line naming the first number that is not (changed, missing or not in the CoT)."""
    theirs, ours = numbers(original), numbers(compressed)
    if every:
        return _all_kept(theirs, ours)
    position = 0
    for found in ours:
        if found not in theirs[position:]:
            return f"number {found!r} of the compressed CoT is not a number of the CoT (unchanged, in order)"
        position = theirs.index(found, position) + 1
    return None
