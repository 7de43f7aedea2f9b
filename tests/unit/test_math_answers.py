"""MATH-style answers: equivalent LaTeX forms match, near-misses do not (checked by math-verify);
plain numbers keep the fast numeric path."""

import pytest

from tokenskip.core.answers import answers_match, extract_prediction, parses_as_answer

# (prediction, gold, expected), written from the MATH answer conventions
TABLE = [
    # fractions and decimals
    ("0.5", "\\frac{1}{2}", True),
    ("1/2", "\\frac{1}{2}", True),
    ("\\frac12", "\\frac{1}{2}", True),
    ("\\dfrac{3}{4}", "0.75", True),
    ("\\tfrac{3}{4}", "\\frac{3}{4}", True),
    ("1.5", "\\frac32", True),
    ("\\frac{9}{4}", "2\\frac{1}{4}", True),
    ("-\\frac{1}{2}", "\\frac{-1}{2}", True),
    ("\\frac{1}{2}", "-\\frac{1}{2}", False),
    ("\\frac{1}{3}", "0.33", False),
    ("0.333", "\\frac{1}{3}", False),
    ("\\frac{4}{11}", "\\frac{4}{13}", False),
    # roots
    ("2\\sqrt{5}", "\\sqrt{20}", True),
    ("2\\sqrt5", "2\\sqrt{5}", True),
    ("\\sqrt{2}/2", "\\frac{1}{\\sqrt{2}}", True),
    ("\\frac{\\sqrt{6}+\\sqrt{2}}{4}", "\\frac{\\sqrt{2}+\\sqrt{6}}{4}", True),
    ("\\sqrt{5}", "2\\sqrt{5}", False),
    ("9\\sqrt{3}", "9\\sqrt{2}", False),
    # pi
    ("16\\pi", "16\\pi", True),
    ("\\pi/2", "\\frac{\\pi}{2}", True),
    ("6.28", "2\\pi", False),
    ("8\\pi", "16\\pi", False),
    # intervals and unions
    ("(-2, 6)", "(-2,6)", True),
    ("(-\\infty, 2)", "(-\\infty,2)", True),
    ("[3,7)\\cup(7,\\infty)", "[3, 7) \\cup (7, \\infty)", True),
    ("[1,3)", "(1,3]", False),
    ("[-2, 6]", "(-2,6)", False),
    # sets, lists of solutions and tuples
    ("\\{1,2,3\\}", "\\{3,2,1\\}", True),
    ("3, 2", "2, 3", True),
    ("2,3", "2, 3", True),
    ("2", "2, 3", False),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\frac{\\pi}{2})", True),
    ("(\\frac{\\pi}{2}, 3)", "\\left( 3, \\frac{\\pi}{2} \\right)", False),
    # multiple choice
    ("\\text{(B)}", "\\text{(B)}", True),
    ("B", "\\text{(B)}", True),
    ("(B)", "\\text{(B)}", True),
    ("C", "\\text{(B)}", False),
    # units and degrees
    ("60\\text{ miles}", "60", True),
    ("60", "60\\text{ miles}", True),
    ("120^\\circ", "120", True),
    ("120", "120^\\circ", True),
    ("60^\\circ", "120^\\circ", False),
    # words
    ("\\text{Friday}", "\\text{Friday}", True),
    ("\\text{Thursday}", "\\text{Friday}", False),
    # expressions, equations, complex numbers, powers, matrices
    ("x^2+2x+1", "(x+1)^2", True),
    ("x^2+1", "(x+1)^2", False),
    ("x=6", "6", True),
    ("3+2i", "2i+3", True),
    ("3-2i", "3+2i", False),
    ("2^{10}", "1024", True),
    ("\\begin{pmatrix} 1 \\\\ -1 \\end{pmatrix}", "\\begin{pmatrix}1\\\\-1\\end{pmatrix}", True),
    ("\\begin{pmatrix} -1 \\\\ 1 \\end{pmatrix}", "\\begin{pmatrix}1\\\\-1\\end{pmatrix}", False),
    # plain numbers, GSM8K style (the fast numeric path)
    ("1,234", "1234", True),
    ("$18", "18", True),
    ("18.0", "18", True),
    ("17", "18", False),
    (None, "\\frac{1}{2}", False),
    ("", "\\frac{1}{2}", False),
]


@pytest.mark.parametrize(("prediction", "gold", "expected"), TABLE)
def test_math_answer_table(prediction: str | None, gold: str, expected: bool) -> None:
    assert answers_match(prediction, gold) is expected


def test_table_is_large_and_has_both_verdicts() -> None:
    assert len(TABLE) >= 40
    assert sum(expected for *_, expected in TABLE) >= 15
    assert sum(not expected for *_, expected in TABLE) >= 15


@pytest.mark.parametrize(
    ("prediction", "gold", "expected"),
    [
        ("1,8", "18", True),      # a prediction's commas are thousands separators, as before
        ("12,000", "12,000", True),
        ("1,3", "1,3", True),     # a gold with non-grouping commas is a list, not 13
        ("3,1", "1,3", True),
        ("13", "1,3", False),
    ],
)
def test_commas_in_plain_numbers_and_lists(prediction: str, gold: str, expected: bool) -> None:
    assert answers_match(prediction, gold) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so the area is $16\\pi$.\nThe final answer is: \\boxed{16\\pi}", "16\\pi"),
        ("nested \\boxed{\\frac{\\sqrt{6}+\\sqrt{2}}{4}} end", "\\frac{\\sqrt{6}+\\sqrt{2}}{4}"),
        ("The answer is $\\frac{5}{36}$.", "\\frac{5}{36}"),
        ("The answer is 42 and $x$ is not.", "42"),
    ],
)
def test_extract_latex_predictions(text: str, expected: str) -> None:
    assert extract_prediction(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("\\frac{3}{4}", True), ("(-2,6)", True), ("\\text{(B)}", True), ("18", True),
     ("", False), ("   ", False), (None, False), ("\\frac{", False)],
)
def test_parses_as_answer(text: str | None, expected: bool) -> None:
    assert parses_as_answer(text) is expected
