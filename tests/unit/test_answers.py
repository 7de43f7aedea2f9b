"""Answer extraction and comparison, on hand-written and real model text."""

import json

import pytest

from tests.conftest import SHARED_GSM8K
from tokenskip.core.answers import answers_match, extract_prediction, split_cot
from tokenskip.core.problems import split_gold, strip_calculator_markup


def test_gold_and_markup() -> None:
    solution, gold = split_gold("She sold 48/2 = <<48/2=24>>24 clips.\n#### 1,072")
    assert gold == "1,072"
    assert solution == "She sold 48/2 = 24 clips."
    assert strip_calculator_markup("a <<1+1=2>>2 b") == "a 2 b"
    with pytest.raises(ValueError, match="no '#### '"):
        split_gold("no marker here 42")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so 3 + 5 = 8.\nThe final answer is: \\boxed{8}", "8"),
        ("x \\boxed{\\frac{1}{2}} done", "\\frac{1}{2}"),
        ("Therefore the answer is 1,234.", "1,234"),
        ("The answer is: $18", "18"),
        ("He has 3 then 7 then 12 apples", "12"),
        ("no numbers at all", None),
    ],
)
def test_extract_prediction(text: str, expected: str | None) -> None:
    assert extract_prediction(text) == expected


@pytest.mark.parametrize(
    ("prediction", "gold", "same"),
    [
        ("1,234", "1234", True),
        ("$18", "18", True),
        ("18.", "18", True),
        ("18.0", "18", True),
        ("17", "18", False),
        (None, "18", False),
        ("\\frac{1}{2}", "0.5", True),
        ("\\frac{1}{3}", "0.5", False),
    ],
)
def test_answers_match(prediction: str | None, gold: str, same: bool) -> None:
    assert answers_match(prediction, gold) is same


def test_split_cot_keeps_reasoning_before_final_line() -> None:
    cot, final = split_cot("Tom has 3 + 5 = 8 apples.\nThe final answer is: \\boxed{8}")
    assert cot == "Tom has 3 + 5 = 8 apples."
    assert final == "The final answer is: \\boxed{8}"
    assert split_cot("just reasoning") == ("just reasoning", "")


def test_checker_agrees_with_labels_on_real_model_solutions() -> None:
    """GPT-3 solutions labelled is_correct: our extractor + checker must agree on nearly all."""
    path = SHARED_GSM8K / "example_model_solutions.jsonl"
    if not path.exists():  # not part of the repository's data/ (GSM8K's own labelled samples)
        pytest.skip(f"{path} is not here: put GSM8K's example_model_solutions.jsonl there to run it")
    agree = total = 0
    with path.open() as handle:
        for line in list(handle)[:300]:
            row = json.loads(line)
            gold = row["ground_truth"].rsplit("A: ", 1)[1].strip()
            for value in row.values():
                if isinstance(value, dict) and "solution" in value:
                    text = value["solution"].split("A: ")[-1] if "A: " in value["solution"] else value["solution"]
                    agree += answers_match(extract_prediction(text), gold) == value["is_correct"]
                    total += 1
    assert total > 300
    assert agree / total >= 0.97


@pytest.mark.parametrize(
    "output",
    [
        "3 + 5 = 8 apples.\nThe final answer is: \\boxed{8}",
        "He has 3 + 5 = 8.\nSo the answer is 8.\nThe final answer is: \\boxed{8}",
        "First 2 * 3 = 6, the final answer is: 6 is wrong.\nThe final answer is: \\boxed{7}",
        "no answer line at all 12",
    ],
)
def test_served_model_splits_cot_and_answer_as_evaluation_does(output: str) -> None:
    from tokenskip.register.pyfunc_model import split_answer

    assert split_answer(output) == (split_cot(output)[0], extract_prediction(output))
