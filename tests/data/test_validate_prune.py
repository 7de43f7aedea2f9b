"""Contract tests: what `tokenskip prune` writes (real chat template, real tokenizer, real ratio tags)
passes every record-level expectation of `tokenskip validate`, whose token recounts (same --base
tokenizer) agree with the counts prune recorded; validate's text rules split words as prune does and
accept every text prune's join can produce."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tokenskip.cli import app
from tokenskip.core.hf import load_tokenizer
from tokenskip.core.io import write_jsonl
from tokenskip.core.problems import split_gold
from tokenskip.data.synthetic import generate_problems
from tokenskip.prune.pruning import _WORD, forced_mask, join_words, split_words
from tokenskip.validate.text_checks import (
    WORD,
    digits_in_order,
    forced_tokens_kept,
    number_problem,
    words_in_order,
)

FORCE_TOKENS = ["+", "-", "*", "/", "=", "$"]
TRICKY = [  # glued punctuation, numbers with separators, openings, apostrophes, line breaks
    "a 1 b.2 c", "It costs $4.50, or 1,200 cents (twice: 2:30).\nDon't  stop\n\n-- 12abc x3 = 36!",
    '"Quote" [x] {y} \\frac{1}{2} = 0.5; 7/8 + (3 * 4) - 5 = 14', "Tom ’s 3’4 a.b.c 1.2.3 ...",
    "-.25 then .5, 1.5e-3 or 2E+5; −7 and 5 − 3 at 50% of 1,234,567", "30*.5=15 and 2-.5=1.5 at 150%",
    "x^{2} + a_{n} = \\sqrt{16}, \\boxed{42}, x=-5 (−3) a-5 3rd 3 3rd",
]

N_QUESTIONS = 48
# The ratio mix of 48 questions drawn over 4 ratios: a share's binomial standard deviation is
# sqrt(0.25 * 0.75 / 48) = 0.0625, so the mix is checked at 3 sigma; every other rule at params'.
MIX_TOLERANCE = 0.19


def _cot_records(model_dir: Path, n: int, max_tokens: int) -> list[dict]:
    """Correct-by-construction cot records: the gold solution is the CoT."""
    tokenizer = load_tokenizer(str(model_dir))
    records = []
    for i, row in enumerate(generate_problems(11, 3 * n)):
        solution, gold = split_gold(row["answer"])
        tokens = len(tokenizer(solution, add_special_tokens=False)["input_ids"])
        if tokens <= max_tokens:
            records.append({"id": f"train-{i:05d}", "question": row["question"], "gold": gold,
                            "output": f"{solution}\nThe answer is {gold}.", "cot": solution,
                            "prediction": gold, "correct": True, "cot_tokens": tokens})
    return records[:n]


@pytest.mark.slow
def test_prune_output_passes_validate(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump({
        "generate": {"max_cot_tokens": 250},
        "prune": {"ratios": [0.5, 0.7, 0.9], "force_digits": True, "batch_size": 16, "threads": 1,
                  "samples_per_question": "one"},
        "validate": {"ratio_tolerance": 0.05, "ratio_mix_tolerance": MIX_TOLERANCE},
    }), encoding="utf-8")
    write_jsonl("cot.jsonl", _cot_records(tiny_model_dir, N_QUESTIONS, 250))
    runner = CliRunner()
    pruned = runner.invoke(app, ["prune", "--base", str(tiny_model_dir), "--cot", "cot.jsonl",
                                 "--out", "prune", "--report", "prune.json"])
    assert pruned.exit_code == 0, pruned.output
    result = runner.invoke(app, ["validate", "--cot", "cot.jsonl", "--pruned", "prune",
                                 "--base", str(tiny_model_dir), "--report", "validate.json",
                                 "--docs", "validation"])
    report = json.loads(Path("validate.json").read_text())
    assert report["failures"] == [] and report["success"] is True, result.output
    assert result.exit_code == 0, result.output
    assert report["suites"]["training_samples"]["rows"] == N_QUESTIONS
    assert report["suites"]["pruned_cots"]["rows"] == 3 * N_QUESTIONS


def test_word_rule_is_prunes() -> None:
    assert WORD.pattern == _WORD.pattern


def _texts() -> list[str]:
    return TRICKY + [split_gold(row["answer"])[0] for row in generate_problems(5, 30)]


@pytest.mark.parametrize("force_digits", [True, False])
def test_every_prune_join_passes_the_text_rules(force_digits: bool) -> None:
    """Any keep mask over any CoT, forced words kept, joined as prune joins: the compressed CoT is a
    subsequence of the CoT's words, keeps the forced digits and operators and its numbers intact."""
    rng = random.Random(0)
    for text in _texts():
        words = split_words(text)
        forced = forced_mask(words, force_digits, FORCE_TOKENS)
        for share in (0.0, 0.2, 0.5, 0.8, 1.0):
            kept = [f or rng.random() < share for f in forced]
            compressed = join_words(words, kept)
            assert words_in_order(text, compressed) is True, (text, compressed)
            assert forced_tokens_kept(text, compressed, FORCE_TOKENS) is True, (text, compressed)
            assert number_problem(text, compressed, force_digits) is None, (text, compressed)
            if force_digits:
                assert digits_in_order(text, compressed) is True, (text, compressed)
            dropped = join_words(words, [k and not f for k, f in zip(kept, forced, strict=True)])
            if any(w.text in FORCE_TOKENS for w in words):
                assert forced_tokens_kept(text, dropped, FORCE_TOKENS) is False, (text, dropped)
