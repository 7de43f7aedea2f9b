"""Property tests (hypothesis) of the invariants users rely on: pruning, answer checking, the
training-mix ratio draw and the promotion gate."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from tokenskip.core.answers import answers_match, extract_prediction
from tokenskip.core.params import load_params
from tokenskip.prune.pruning import forced_mask, prune_record, prune_to_ratio, select_words, split_words
from tokenskip.prune.samples import draw_ratios
from tokenskip.register.gate import Paired, RatioResult, Thresholds, judge

FAST = settings(max_examples=80, deadline=None)
PARAMS = load_params(Path(__file__).resolve().parents[2] / "params.yaml")
RATIO_TOLERANCE = PARAMS.validate_.ratio_tolerance

# --- pruning ----------------------------------------------------------------------------------

_core = st.one_of(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC", min_size=1, max_size=7),
    st.integers(min_value=0, max_value=10**7).map(str),
    st.integers(min_value=1000, max_value=10**7).map(lambda n: f"{n:,}"),
    st.floats(min_value=0, max_value=1e4, allow_nan=False).map(lambda x: f"{x:.2f}"),
)
_chunk = st.tuples(st.sampled_from(["", "(", "$", '"']), _core, st.sampled_from(["", ".", ",", ")", "?!", ":"]))
_gap = st.sampled_from([" ", " ", "  ", "\n", "\n\n"])


@st.composite
def cot_texts(draw: st.DrawFn) -> str:
    """A CoT-like text: words and numbers with opening/closing punctuation, separated by whitespace."""
    chunks = draw(st.lists(_chunk, min_size=1, max_size=40))
    gaps = draw(st.lists(_gap, min_size=len(chunks), max_size=len(chunks)))
    return "".join(gap + "".join(chunk) for gap, chunk in zip(gaps, chunks, strict=True)).strip()


@st.composite
def pruning_cases(draw: st.DrawFn) -> tuple[str, list[float], float, list[bool]]:
    """(text, one score per word, ratio g in (0, 1], forced mask)."""
    text = draw(cot_texts())
    n = len(split_words(text))
    scores = draw(st.lists(st.floats(-10, 10, allow_nan=False), min_size=n, max_size=n))
    ratio = draw(st.floats(min_value=0.05, max_value=1.0))
    forced = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return text, scores, ratio, forced


def _is_subsequence(part: list[str], whole: list[str]) -> bool:
    remaining = iter(whole)
    return all(any(item == other for other in remaining) for item in part)


@FAST
@given(pruning_cases())
def test_pruned_text_is_an_in_order_subsequence_of_the_words(case) -> None:
    text, scores, ratio, forced = case
    words = split_words(text)
    result = prune_to_ratio(words, scores, ratio, forced)
    pruned_words = [w.text for w in split_words(result.text)]
    assert pruned_words == [w.text for w, k in zip(words, result.kept, strict=True) if k]
    assert _is_subsequence(pruned_words, [w.text for w in words])


@pytest.mark.parametrize("text", ["2^3=8 so", "3×4=12 eggs", "x 5^2 y"])
def test_dropping_a_glued_mark_never_merges_the_numbers_around_it(text: str) -> None:
    words = split_words(text)
    result = prune_to_ratio(words, [0.0] * len(words), 0.5, forced_mask(words, True, PARAMS.prune.force_tokens))
    assert [w.text for w in split_words(result.text)] == [w.text for w, k in zip(words, result.kept, strict=True) if k]


@FAST
@given(pruning_cases())
def test_every_forced_word_is_kept(case) -> None:
    text, scores, ratio, forced = case
    result = prune_to_ratio(split_words(text), scores, ratio, forced)
    assert all(k for k, f in zip(result.kept, forced, strict=True) if f)
    assert result.forced_words == sum(forced)


@FAST
@given(st.lists(st.text(alphabet="abcxyz", min_size=1, max_size=40), min_size=1, max_size=30), st.floats(0.05, 1.0))
@example(["x" * 100, *"abcdefghijklmnopqrs"], 0.1)  # the kept text overshoots g by more than g
def test_prune_record_never_fails_whatever_the_target_tokenizer_counts(texts: list[str], ratio: float) -> None:
    cot = " ".join(texts)
    words = split_words(cot)
    scores = [float(len(w.text)) for w in words]  # long words score high but cost many tokens
    record = prune_record({"id": "p", "cot": cot}, scores, ratio, [False] * len(words), [1.0] * len(words), len)
    assert record["cot_tokens"] == len(cot) and record["compressed_tokens"] == len(record["compressed_cot"])
    assert _is_subsequence(record["compressed_cot"].split(), texts)


@FAST
@given(cot_texts(), st.lists(st.sampled_from(["+", "=", "$", "(", "the"]), max_size=3))
def test_force_digits_marks_every_number_and_force_token(text: str, tokens: list[str]) -> None:
    words = split_words(text)
    mask = forced_mask(words, True, tokens)
    for word, forced in zip(words, mask, strict=True):
        assert forced == (any(ch.isdigit() for ch in word.text) or word.text in tokens)
    assert forced_mask(words, False, []) == [False] * len(words)


@FAST
@given(st.integers(min_value=1, max_value=300), st.floats(min_value=0.05, max_value=1.0), st.data())
def test_kept_share_is_within_tolerance_of_g_when_forced_words_fit(n: int, ratio: float, data) -> None:
    scores = data.draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=n, max_size=n))
    forced = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    kept, over_budget = select_words(scores, ratio, forced)
    assume(not over_budget)
    assert all(k for k, f in zip(kept, forced, strict=True) if f)
    assert abs(sum(kept) - ratio * n) <= 0.5 + 1e-9  # the nearest whole number of words
    if n >= 10:  # the validate stage's own tolerance on the actual ratio
        assert abs(sum(kept) / n - ratio) <= RATIO_TOLERANCE + 1e-9


@FAST
@given(st.data())
def test_weighted_budget_is_filled_up_to_the_largest_word_left_out(data) -> None:
    n = data.draw(st.integers(min_value=1, max_value=60))
    weights = data.draw(st.lists(st.floats(0.25, 4.0), min_size=n, max_size=n))
    scores = data.draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=n, max_size=n))
    ratio = data.draw(st.floats(min_value=0.05, max_value=0.99))
    kept, over_budget = select_words(scores, ratio, None, weights)
    assert not over_budget
    used, budget = sum(w for w, k in zip(weights, kept, strict=True) if k), ratio * sum(weights)
    assert used <= budget + 0.5 + 1e-9
    left_out = [w for w, k in zip(weights, kept, strict=True) if not k]
    assert not left_out or used > budget + 0.5 - max(left_out) - 1e-9


_signs = st.sampled_from(["", "", "-", "−"])
_number_core = st.one_of(
    st.integers(min_value=0, max_value=10**7).map(str),
    st.integers(min_value=1000, max_value=10**7).map(lambda n: f"{n:,}"),
    st.floats(min_value=0, max_value=1e4, allow_nan=False).map(lambda x: f"{x:.2f}"),
    st.integers(min_value=1, max_value=99).map(lambda n: f".{n}"),
    st.tuples(st.integers(1, 9), st.integers(0, 9), st.sampled_from(["e", "E"]), st.sampled_from(["", "-", "+"]),
              st.integers(1, 12)).map(lambda t: f"{t[0]}.{t[1]}{t[2]}{t[3]}{t[4]}"),
)
_number = st.tuples(_signs, _number_core, st.sampled_from(["", "", "%"])).map("".join)
_math_piece = st.one_of(
    _number,
    st.text(alphabet="abcxyz", min_size=1, max_size=5),
    st.sampled_from(["+", "-", "−", "*", "/", "=", "^", "(", ")", ".", ",", "%", "$", "{", "}", "_", "\\"]),
    st.sampled_from(["\\frac{1}{2}", "^{2}", "x^{10}", "a_{n}", "\\sqrt{16}", "\\boxed{42}", "\\times",
                     "\\frac{\\sqrt{3}}{2}", "\\sqrt[3]{8}"]),
)


@st.composite
def math_texts(draw: st.DrawFn) -> str:
    """CoT-like arithmetic: numbers (signs, decimals, leading dots, exponents, percents, thousands),
    operators and LaTeX groups, glued or separated by whitespace."""
    pieces = draw(st.lists(_math_piece, min_size=1, max_size=30))
    gaps = draw(st.lists(st.sampled_from(["", "", " ", "\n"]), min_size=len(pieces), max_size=len(pieces)))
    return "".join(gap + piece for gap, piece in zip(gaps, pieces, strict=True)).strip()


def _numbers(text: str) -> list[str]:
    return [w.text for w in split_words(text) if any(ch.isdigit() for ch in w.text)]


@FAST
@given(math_texts(), st.floats(min_value=0.05, max_value=1.0), st.booleans(), st.data())
@example("30*.5=15 and 2-.5=1.5 at 150%", 0.5, False, None)
@example("-.25 .5 1.5e-3 −7 50% \\frac{1}{2}", 0.3, False, None)
def test_every_number_of_the_output_is_a_number_of_the_input_unchanged(
    text: str, ratio: float, force_digits: bool, data
) -> None:
    words = split_words(text)
    draw = data.draw if data is not None else (lambda strategy: [0.0] * len(words))
    scores = draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=len(words), max_size=len(words)))
    forced = forced_mask(words, force_digits, [])
    result = prune_to_ratio(words, scores, ratio, forced)
    assert [w.text for w in split_words(result.text)] == [w.text for w, k in zip(words, result.kept, strict=True) if k]
    theirs, ours = _numbers(text), _numbers(result.text)
    assert _is_subsequence(ours, theirs), (text, result.text)
    if force_digits:
        assert ours == theirs, (text, result.text)


# --- answers ----------------------------------------------------------------------------------

_amounts = st.one_of(
    st.integers(min_value=0, max_value=10**9).map(lambda n: (str(n), n, f"{n:,}")),
    st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False).map(
        lambda d: (str(d), float(d), f"{d:,}")
    ),
)


@FAST
@given(_amounts, st.booleans(), st.booleans(), st.booleans(), st.booleans())
def test_answers_match_ignores_commas_dollar_trailing_zero_and_reads_the_sign(
    amount, commas: bool, dollar: bool, point_zero: bool, negative: bool
) -> None:
    plain, value, grouped = amount
    shown = grouped if commas else plain
    if point_zero and "." not in shown:
        shown += ".0"
    sign = "-" if negative else ""
    prediction = f"{sign}${shown}" if dollar else f"{sign}{shown}"
    gold = f"{sign}{plain}"
    assert answers_match(prediction, gold)
    assert answers_match(gold, prediction)  # symmetric
    assert answers_match(f"{sign}{grouped}", gold)  # a gold with thousands separators
    assert extract_prediction(f"So it costs {prediction} in all.\nThe final answer is: \\boxed{{{prediction}}}") \
        == prediction
    if value != 0:
        flipped = f"{'' if negative else '-'}{plain}"
        assert not answers_match(prediction, flipped)
        assert not answers_match(flipped, prediction)
    other = value + 1 + abs(value) * 1e-3  # beyond the 1e-6 relative slack
    assert not answers_match(prediction, f"{sign}{other:.4f}")


# --- training mix -----------------------------------------------------------------------------

_ratio_sets = st.lists(st.sampled_from([0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]), min_size=1, max_size=5, unique=True)


@FAST
@given(_ratio_sets, st.integers(min_value=0, max_value=2**32), st.integers(min_value=0, max_value=50))
def test_ratio_draw_is_deterministic_per_seed_and_stays_in_the_mix(ratios, seed: int, n: int) -> None:
    drawn = draw_ratios(n, ratios, seed)
    assert drawn == draw_ratios(n, list(reversed(ratios)), seed)  # same seed, same draw
    assert len(drawn) == n
    assert set(drawn) <= {1.0, *ratios}


@settings(max_examples=30, deadline=None)
@given(_ratio_sets, st.integers(min_value=0, max_value=2**32))
def test_ratio_draw_covers_g1_and_every_ratio_evenly(ratios, seed: int) -> None:
    n = 4000
    drawn = draw_ratios(n, ratios, seed)
    mix = {1.0, *ratios}
    assert set(drawn) == mix  # g = 1.0 is part of the training mix
    for g in mix:  # near-uniform: validate's training_ratio_mix rule would pass
        assert abs(drawn.count(g) / n - 1 / len(mix)) <= PARAMS.validate_.ratio_mix_tolerance


def test_ratio_draw_depends_on_the_seed() -> None:
    draws = {tuple(draw_ratios(40, [0.5, 0.7], seed)) for seed in range(5)}
    assert len(draws) == 5


# --- promotion gate ---------------------------------------------------------------------------

_share = st.floats(min_value=-0.5, max_value=0.5, allow_nan=False)
_delta = st.floats(min_value=0.0, max_value=0.3, allow_nan=False)


def _paired(drop: float, reduction: float, width: float) -> Paired:
    return Paired(drop, (drop - width, drop + width), reduction, (reduction - width, reduction + width), 0.5)


@FAST
@given(
    drop=_share, reduction=_share, width=st.floats(0.0, 0.1), better_drop=_delta, better_reduction=_delta,
    accuracy=st.floats(0.0, 1.0), tokens=st.floats(1.0, 500.0), more_accuracy=_delta, fewer_tokens=_delta,
    champion=st.none() | st.tuples(st.floats(0.0, 1.0), st.floats(1.0, 500.0)),
    thresholds=st.tuples(st.floats(0.0, 0.1), st.floats(0.0, 0.5), st.sampled_from(["point", "upper_ci"])),
)
@example(drop=0.0, reduction=0.55, width=0.1, better_drop=0.0, better_reduction=0.0, accuracy=0.5, tokens=50.0,
         more_accuracy=0.0, fewer_tokens=0.0, champion=None, thresholds=(0.1, 0.5, "upper_ci"))  # CI low end
def test_gate_verdict_is_monotone_in_accuracy_and_tokens(
    drop, reduction, width, better_drop, better_reduction, accuracy, tokens, more_accuracy, fewer_tokens,
    champion, thresholds,
) -> None:
    gate = Thresholds(*thresholds)
    best = None if champion is None else RatioResult(0.9, champion[0], champion[1], 0.9)
    worse = judge(RatioResult(0.5, accuracy, tokens, 0.5), _paired(drop, reduction, width), "original", gate, best)
    better = judge(
        RatioResult(0.5, min(1.0, accuracy + more_accuracy), tokens * (1 - fewer_tokens), 0.5),
        _paired(drop - better_drop, reduction + better_reduction, width), "original", gate, best,
    )
    assert not worse.passed or better.passed, (worse.reason, better.reason)
    judged_drop = drop if gate.decision == "point" else drop + width
    judged_reduction = reduction if gate.decision == "point" else reduction - width
    if worse.passed:  # sound: a passing version meets both thresholds
        assert judged_drop <= gate.max_accuracy_drop + 1e-9
        assert judged_reduction >= gate.min_token_reduction - 1e-9
    elif best is None:  # complete: without a champion only the thresholds can fail it
        assert judged_drop > gate.max_accuracy_drop or judged_reduction < gate.min_token_reduction
    assert worse.reason == "passed" if worse.passed else worse.reason != "passed"


@pytest.mark.parametrize("decision", ["point", "upper_ci"])
def test_gate_fails_a_version_the_champion_dominates_and_passes_one_that_compresses_more(decision: str) -> None:
    gate = Thresholds(0.02, 0.1, decision)
    champion = RatioResult(0.7, 0.80, 100.0, 0.7)
    paired = _paired(0.0, 0.3, 0.0)
    assert not judge(RatioResult(0.8, 0.70, 120.0, 0.8), paired, "original", gate, champion).passed
    assert judge(RatioResult(0.5, 0.70, 90.0, 0.5), paired, "original", gate, champion).passed
    assert judge(RatioResult(0.8, 0.79, 120.0, 0.8), paired, "original", gate, champion).passed
