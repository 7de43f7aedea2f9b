"""Seeded generator of multi-step arithmetic word problems in GSM8K format.

Each problem has 2 to 4 steps of +, - or * on small integers. The solution is a
verbose, GSM8K-style chain of thought (filler phrases, restated quantities) ending
in ``#### N``, so importance pruning has real words to remove. Same seed, same bytes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

from tokenskip.core.io import atomic_open

NAMES = [
    ("Tom", "he"), ("Anna", "she"), ("Liam", "he"), ("Maria", "she"), ("Omar", "he"),
    ("Sara", "she"), ("Ben", "he"), ("Lucy", "she"), ("Ravi", "he"), ("Mia", "she"),
    ("Jack", "he"), ("Emma", "she"), ("Noah", "he"), ("Zoe", "she"), ("Ivan", "he"),
]
OBJECTS = [
    "apples", "marbles", "stickers", "books", "pencils", "cookies", "coins", "shells",
    "cards", "flowers", "balloons", "stamps", "candies", "toys", "eggs", "boxes",
]
OPENERS = [
    "Let's think about this step by step.",
    "We need to keep track of how many {obj} {name} has.",
    "First, let us write down what we know from the problem.",
    "To solve this, we follow the {obj} through each event in order.",
]
START = [
    "At the start, {name} has {a} {obj}.",
    "In the beginning, {name} owns exactly {a} {obj}.",
    "We know that {name} starts with {a} {obj}.",
]
ADD_Q = ["Then {pro} buys {k} more {obj}.", "A friend gives {name} {k} more {obj}.",
         "Later, {pro} finds {k} additional {obj}."]
SUB_Q = ["Then {pro} gives away {k} {obj}.", "After that, {name} loses {k} {obj}.",
         "Next, {pro} sells {k} of the {obj}."]
MUL_Q = ["Then the number of {obj} becomes {k} times as large.",
         "After that, {name} ends up with {k} times as many {obj} as before."]
ADD_S = [
    "Since {pro} gets {k} more, we add them, so now {pro} has {x} + {k} = {y} {obj}.",
    "Adding the {k} new {obj} to what {pro} already had gives {x} + {k} = {y} {obj} in total.",
]
SUB_S = [
    "Because {pro} gives away {k}, we subtract them, so {pro} now has {x} - {k} = {y} {obj}.",
    "Taking away the {k} {obj} leaves {name} with {x} - {k} = {y} {obj}.",
]
MUL_S = [
    "The amount grows {k} times, so we multiply and get {x} * {k} = {y} {obj}.",
    "Having {k} times as many means {x} * {k} = {y} {obj} now.",
]
FILLERS = [
    "", "", "Now let us look at the next part of the problem.",
    "This is an important detail to keep in mind.", "So far so good.",
]
CLOSERS = ["Therefore, after all of these steps, {name} has {y} {obj}.",
           "So in the end, {name} has {y} {obj} left."]
QUESTION_END = ["How many {obj} does {name} have now?", "How many {obj} does {name} have in the end?"]


def _step(rng: random.Random, x: int) -> tuple[str, int, int]:
    """Pick an operation valid for the current amount x; return (op, k, new amount)."""
    ops = ["add", "sub"] + (["mul"] if x <= 40 else [])
    op = rng.choice(ops if x > 1 else ["add", "mul"])
    if op == "add":
        k = rng.randint(1, 20)
        return op, k, x + k
    if op == "sub":
        k = rng.randint(1, x - 1)
        return op, k, x - k
    k = rng.randint(2, 4)
    return op, k, x * k


def make_problem(rng: random.Random) -> dict[str, str]:
    """One GSM8K-format problem: ``{"question", "answer"}`` with ``#### N`` at the end."""
    name, pro = rng.choice(NAMES)
    obj = rng.choice(OBJECTS)
    x = rng.randint(2, 20)
    fmt = {"name": name, "pro": pro, "obj": obj, "a": x}
    question = [rng.choice(START[:2]).format(**fmt)]
    solution = [rng.choice(OPENERS).format(**fmt), rng.choice(START).format(**fmt)]
    templates = {"add": (ADD_Q, ADD_S), "sub": (SUB_Q, SUB_S), "mul": (MUL_Q, MUL_S)}
    for _ in range(rng.randint(2, 4)):
        op, k, y = _step(rng, x)
        q_templates, s_templates = templates[op]
        step_fmt = {**fmt, "k": k, "x": x, "y": y}
        question.append(rng.choice(q_templates).format(**step_fmt))
        filler = rng.choice(FILLERS)
        solution.append((filler + " " if filler else "") + rng.choice(s_templates).format(**step_fmt))
        x = y
    question.append(rng.choice(QUESTION_END).format(**fmt))
    solution.append(rng.choice(CLOSERS).format(**fmt, y=x))
    return {"question": " ".join(question), "answer": "\n".join(solution) + f"\n#### {x}"}


def generate_problems(seed: int, count: int, exclude: set[str] | None = None) -> Iterator[dict]:
    """Yield ``count`` distinct problems from ``seed``, skipping questions in ``exclude``."""
    rng = random.Random(seed)
    seen = set(exclude or ())
    produced = 0
    while produced < count:
        problem = make_problem(rng)
        if problem["question"] in seen:
            continue
        seen.add(problem["question"])
        produced += 1
        yield problem


def write_synthetic(out_dir: str | Path, seed: int, n_train: int, n_test: int) -> dict[str, int]:
    """Write ``train.jsonl`` and ``test.jsonl`` (disjoint questions) atomically."""
    out = Path(out_dir)
    train = list(generate_problems(seed, n_train))
    test = list(generate_problems(seed + 1, n_test, exclude={p["question"] for p in train}))
    for split, rows in (("train", train), ("test", test)):
        with atomic_open(out / f"{split}.jsonl") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return {"train": len(train), "test": len(test)}
