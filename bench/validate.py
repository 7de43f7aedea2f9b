"""Speed of the validate stage: seconds to validate a few thousand clean rows, data docs included.

Run from the repository root: ``.venv/bin/python bench/validate.py [n_questions]``.
Prints one JSON line: rows per suite, seconds for loading, validating (+ docs) and in total.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.data.validate_fixture import (  # noqa: E402
    FORCE_TOKENS,
    RATIOS,
    make_records,
    write_records,
    write_word_tokenizer,
)
from tokenskip.core.hf import load_tokenizer, resolve_base_model  # noqa: E402
from tokenskip.validate import Thresholds, build_frames, load_inputs, validate_frames  # noqa: E402


def main(n_questions: int) -> None:
    """Write n_questions clean questions (x5 pruned, x1 sample), validate, print the figures."""
    thresholds = Thresholds(250, RATIOS, True, 0.05, 0.05, FORCE_TOKENS)
    with tempfile.TemporaryDirectory() as tmp:
        cot_path, pruned_dir = write_records(Path(tmp) / "artifacts", make_records(n_questions))
        tokenizer = load_tokenizer(*resolve_base_model(write_word_tokenizer(Path(tmp) / "base")))
        start = time.perf_counter()
        import great_expectations  # noqa: F401  (import time reported apart)

        imported = time.perf_counter()
        frames = build_frames(load_inputs(cot_path, pruned_dir), thresholds.ratios, tokenizer, FORCE_TOKENS)
        loaded = time.perf_counter()
        report = validate_frames(frames, thresholds, Path(tmp) / "docs")
        done = time.perf_counter()
    print(json.dumps({
        "bench": "validate", "success": report["success"],
        "rows": {name: suite["rows"] for name, suite in report["suites"].items()},
        "expectations": sum(s["evaluated_expectations"] for s in report["suites"].values()),
        "gx_import_s": round(imported - start, 2), "load_frames_s": round(loaded - imported, 2),
        "validate_and_docs_s": round(done - loaded, 2), "total_s": round(done - start, 2),
    }))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
