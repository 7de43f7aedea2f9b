"""Speed of the validate stage: seconds to validate a few thousand clean rows, data docs included.

Run from the repository root: ``.venv/bin/python bench/validate.py [n_questions]``.
The inputs come from the library, as the stages make them: seeded synthetic problems whose
reference solutions are the CoTs (``core.records.cot_record``), a byte-level BPE tokenizer trained
on them (``base_model.tokenizer``), and prune's ``prune_all`` with the random scorer under
params.yaml's ``prune`` section (pruned records for every ratio and the samples).
Prints one JSON line: rows per suite, seconds for loading, validating (+ docs) and in total.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from tiny_inputs import synthetic_problems

from tokenskip.base_model.build import tokenizer_corpus
from tokenskip.base_model.tokenizer import build_tokenizer
from tokenskip.core.io import write_jsonl
from tokenskip.core.params import Params, load_params
from tokenskip.core.prompts import format_completion, ratio_key
from tokenskip.core.records import cot_record
from tokenskip.prune.prune_set import prune_all
from tokenskip.prune.scorers import RandomScorer
from tokenskip.validate import Thresholds, build_frames, load_inputs, validate_frames


def write_inputs(folder: Path, n_questions: int, params: Params) -> tuple[Path, Path, object]:
    """cot.jsonl and the prune folder for ``n_questions`` clean questions; the target tokenizer."""
    problems = synthetic_problems(0, n_questions)
    instruction = params.model.instruction
    tokenizer = build_tokenizer(tokenizer_corpus(problems, instruction), params.base_model.vocab_size)
    cots = [cot_record(p, format_completion(p.solution, p.gold), tokenizer) for p in problems]
    scorer = RandomScorer(params.prune.seed)
    pruned, samples, _ = prune_all(cots, scorer, tokenizer, params.prune, instruction)
    cot_path, pruned_dir = folder / "generate" / "cot.jsonl", folder / "prune"
    pruned_dir.mkdir(parents=True)
    cot_path.parent.mkdir(parents=True)
    write_jsonl(cot_path, cots)
    for ratio, rows in pruned.items():
        write_jsonl(pruned_dir / f"pruned_{ratio_key(ratio)}.jsonl", rows)
    write_jsonl(pruned_dir / "samples.jsonl", samples)
    return cot_path, pruned_dir, tokenizer


def main(n_questions: int) -> None:
    """Write n_questions clean questions (x ratios pruned, samples), validate, print the figures."""
    params = load_params("params.yaml")
    thresholds = Thresholds(
        params.generate.max_cot_tokens, params.prune.ratios, params.prune.force_digits,
        params.validate_.ratio_tolerance, params.validate_.ratio_mix_tolerance,
        tuple(params.prune.force_tokens),
    )
    with tempfile.TemporaryDirectory() as tmp:
        cot_path, pruned_dir, tokenizer = write_inputs(Path(tmp) / "artifacts", n_questions, params)
        start = time.perf_counter()
        import great_expectations  # noqa: F401  (import time reported apart)

        imported = time.perf_counter()
        frames = build_frames(load_inputs(cot_path, pruned_dir), thresholds.ratios, tokenizer,
                              thresholds.force_tokens)
        loaded = time.perf_counter()
        report = validate_frames(frames, thresholds, Path(tmp) / "docs")
        done = time.perf_counter()
    print(json.dumps({
        "bench": "validate", "success": report["success"], "failures": len(report["failures"]),
        "rows": {name: suite["rows"] for name, suite in report["suites"].items()},
        "expectations": sum(s["evaluated_expectations"] for s in report["suites"].values()),
        "gx_import_s": round(imported - start, 2), "load_frames_s": round(loaded - imported, 2),
        "validate_and_docs_s": round(done - loaded, 2), "total_s": round(done - start, 2),
    }))


if __name__ == "__main__":
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(__doc__)
        raise SystemExit(0)
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
