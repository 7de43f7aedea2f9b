"""Pure contracts the audit found untested: g = 1.0 in the training mix, evaluate's ratio-tagged
prompts and answer counting, and writes that fail partway leaving the old output intact."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

import tokenskip.core.decoding as decoding
from tokenskip.core.decoding import Generation
from tokenskip.core.io import atomic_open, read_jsonl, staged_dir, write_jsonl
from tokenskip.core.params import load_params
from tokenskip.core.problems import Problem
from tokenskip.core.prompts import build_prompt, format_completion
from tokenskip.evaluate.conditions import run_condition, tokenskip_conditions
from tokenskip.prune.samples import build_samples, draw_ratios, sample_ratios

PARAMS = load_params(Path(__file__).resolve().parents[2] / "params.yaml")
EOS = "<|eos|>"


class ChatTokenizer:
    """The slice of a Hugging Face tokenizer that prompts and token counts use."""

    eos_token = EOS

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[str]]:
        return {"input_ids": text.split()}

    def apply_chat_template(self, messages, tokenize: bool, add_generation_prompt: bool) -> str:
        assert tokenize is False and add_generation_prompt is True
        return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages) + "<assistant>"


# --- the training mix -------------------------------------------------------------------------


def test_training_mix_holds_full_cots_at_g1_and_tagged_pruned_cots_below() -> None:
    ratios, n = PARAMS.prune.ratios, 60
    records = [{"id": f"q{i}", "question": f"What is {i} + 1?", "gold": i + 1,
                "cot": f"We add {i} and 1 to get {i + 1} in the end."} for i in range(n)]
    pruned = {g: {r["id"]: f"{r['id']} at {g}" for r in records} for g in ratios}
    drawn = draw_ratios(n, ratios, PARAMS.prune.seed)
    tokenizer = ChatTokenizer()
    samples = build_samples(
        records, pruned, [[g] for g in drawn], lambda q, g: build_prompt(tokenizer, q, "Solve.", g)
    )
    assert [s["ratio"] for s in samples] == drawn
    assert 1.0 in drawn and set(drawn) == {1.0, *ratios}
    for record, sample in zip(records, samples, strict=True):
        g = sample["ratio"]
        assert sample["prompt"] == build_prompt(tokenizer, record["question"], "Solve.", g)
        if g == 1.0:
            assert EOS not in sample["prompt"]
            assert sample["completion"] == format_completion(record["cot"], str(record["gold"]))
        else:
            assert f"{record['question']}{EOS}{g:g}{EOS}</user>" in sample["prompt"]
            assert sample["completion"] == format_completion(pruned[g][record["id"]], str(record["gold"]))
        assert sample["completion"].endswith(f"The final answer is: \\boxed{{{record['gold']}}}")


# --- evaluate ---------------------------------------------------------------------------------


def test_evaluate_conditions_tag_g_below_one_and_leave_g1_untagged() -> None:
    conditions = tokenskip_conditions([0.5, 0.7, 0.9], "Solve.")
    assert [(c.name, c.g, c.prompt_ratio) for c in conditions] == [
        ("1.0", 1.0, None), ("0.9", 0.9, 0.9), ("0.7", 0.7, 0.7), ("0.5", 0.5, 0.5)]
    assert [c.g for c in tokenskip_conditions([0.5, 1.0], "Solve.")] == [1.0, 0.5]  # g = 1.0 once


@pytest.mark.parametrize(("g", "tag"), [(1.0, None), (0.9, f"{EOS}0.9{EOS}"), (0.5, f"{EOS}0.5{EOS}")])
def test_evaluate_prompts_carry_the_ratio_tag_and_correct_answers_are_counted(
    monkeypatch: pytest.MonkeyPatch, g: float, tag: str | None
) -> None:
    problems = [Problem(f"p{i}", f"Question {i}?", str(10 * i)) for i in range(5)]
    answers = {"Question 0?": "0", "Question 1?": "10", "Question 2?": "$20.0", "Question 3?": "31",
               "Question 4?": "-40"}  # 3 of 5 right
    seen: list[str] = []

    def fake_generate(model, tokenizer, prompts, batch_size, max_new_tokens, desc="", **_):
        seen.extend(prompts)
        question = [next(q for q in answers if q in p) for p in prompts]
        return [Generation(f"So it is 3 steps.\nThe final answer is: \\boxed{{{answers[q]}}}", 12)
                for q in question], 1.0

    monkeypatch.setattr(decoding, "generate_greedy", fake_generate)
    condition = next(c for c in tokenskip_conditions([0.5, 0.9], "Solve.") if c.g == g)
    settings = SimpleNamespace(max_new_tokens=64, batch_size=2, confidence=0.95)
    result = run_condition(None, ChatTokenizer(), problems, condition, settings)
    assert seen == result.prompts and len(seen) == 5
    for problem, prompt in zip(problems, seen, strict=True):
        if tag is None:
            assert EOS not in prompt
        else:
            assert f"{problem.question}{tag}</user>" in prompt
    assert [r["correct"] for r in result.records] == [True, True, True, False, False]
    assert result.metrics["accuracy"] == 0.6
    assert result.metrics["mean_cot_tokens"] == 5.0  # the CoT "So it is 3 steps." is 5 tokens
    lo, hi = result.metrics["accuracy_ci"]
    assert lo < 0.6 < hi


# --- atomic writes ----------------------------------------------------------------------------


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_a_write_that_fails_partway_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old contents\n")
    with pytest.raises(RuntimeError, match="disk gone"), atomic_open(target) as handle:
        handle.write("half a new report")
        handle.flush()
        raise RuntimeError("disk gone")
    assert target.read_text() == "old contents\n"
    assert _leftovers(tmp_path, {"report.json"}) == []


def test_a_jsonl_writer_interrupted_partway_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "rows.jsonl"
    write_jsonl(target, [{"n": 1}, {"n": 2}])

    def records():
        yield {"n": 10}
        raise KeyboardInterrupt  # Ctrl-C between records

    with pytest.raises(KeyboardInterrupt):
        write_jsonl(target, records())
    assert read_jsonl(target) == [{"n": 1}, {"n": 2}]
    assert _leftovers(tmp_path, {"rows.jsonl"}) == []
    assert write_jsonl(target, [{"n": 3}]) == 1 and read_jsonl(target) == [{"n": 3}]


def test_a_failed_first_write_creates_nothing_and_a_good_one_is_readable_by_others(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "new.txt"
    with pytest.raises(ValueError), atomic_open(target) as handle:
        handle.write("x")
        raise ValueError
    assert not target.exists() and _leftovers(target.parent, set()) == []
    with atomic_open(target) as handle:
        handle.write("done")
    mask = os.umask(0)
    os.umask(mask)
    assert target.read_text() == "done" and (target.stat().st_mode & 0o777) == 0o666 & ~mask


def test_a_stage_folder_that_fails_partway_keeps_the_old_folder(tmp_path: Path) -> None:
    target = tmp_path / "prune"
    target.mkdir()
    (target / "samples.jsonl").write_text("old\n")
    with pytest.raises(RuntimeError), staged_dir(target) as staging:
        (staging / "samples.jsonl").write_text("new, half written")
        raise RuntimeError
    assert [p.name for p in target.iterdir()] == ["samples.jsonl"]
    assert (target / "samples.jsonl").read_text() == "old\n"
    assert _leftovers(tmp_path, {"prune"}) == []
    with staged_dir(target) as staging:
        (staging / "samples.jsonl").write_text("new\n")
    assert (target / "samples.jsonl").read_text() == "new\n" and _leftovers(tmp_path, {"prune"}) == []


def test_all_ratios_per_question_trains_every_question_at_every_g() -> None:
    """prune.samples_per_question: all gives each question one sample per g in {1.0, *ratios}."""
    ratios, n = [0.5, 0.7], 4
    records = [{"id": f"q{i}", "question": f"What is {i} + 1?", "gold": i + 1,
                "cot": f"We add {i} and 1 to get {i + 1}."} for i in range(n)]
    pruned = {g: {r["id"]: f"{r['id']} at {g}" for r in records} for g in ratios}
    drawn = sample_ratios(n, ratios, 0, "all")
    samples = build_samples(records, pruned, drawn, lambda q, g: f"{q}|{g}")
    assert [(s["id"], s["ratio"]) for s in samples] == [
        (f"q{i}", g) for i in range(n) for g in (0.5, 0.7, 1.0)
    ]
    assert samples[0]["completion"].startswith("q0 at 0.5")
    one = sample_ratios(n, ratios, 0, "one")
    assert [len(r) for r in one] == [1] * n and [r[0] for r in one] == draw_ratios(n, ratios, 0)


def test_the_seeded_ratio_draw_is_the_same_in_every_version() -> None:
    # samples.jsonl (and so dvc.lock's md5 and the fine-tuned model) depend on this exact sequence
    assert draw_ratios(8, [0.5, 0.6, 0.7, 0.8, 0.9], 0) == [0.8, 0.8, 0.5, 0.7, 0.9, 0.8, 0.8, 0.7]
    assert draw_ratios(8, [0.9, 0.5], 3) == [0.5, 1.0, 1.0, 0.5, 0.9, 1.0, 0.9, 1.0]
