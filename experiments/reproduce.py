"""Does a fresh clone reproduce the committed results? Clone, run every stage, compare.

The reproducibility contract (README): bitwise on one machine; every headline metric within
+-0.02 accuracy and +-0.01 actual ratio is the tolerance this experiment judges a clone by (a clone on
a CPU with another capability, AVX2 against AVX512, missed it: README). It checks: ``git clone`` of the
committed HEAD into a temporary folder, ``dvc pull`` of the data, ``dvc repro`` of every stage
(the clone's own code, its own MLflow store), then every headline metric of the clone's reports
against the committed ``reports/``: the base model's held-out accuracy, and per TokenSkip ratio
and per baseline the accuracy and actual ratio, with both runs' CPU capability and library
versions (each ``base-model.json``'s ``environment``). It also says which DVC outputs came out
byte-identical (their md5 in the clone's dvc.lock against the committed one).

Prints ONE JSON line: the largest accuracy and actual-ratio deviations (and where), every
metric's deviation, both environments and whether they match (another CPU capability or library
version trains another bootstrap model), the outputs that differ, the stages' wall time, and
``pass``. ``--keep-reports DIR`` copies the clone's reports there. Takes as long as ``make run``
(21-25 minutes on 2 cores with AVX512, 46 with AVX2); run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from fresh_clone import DVC, ROOT, clone_head

ACCURACY_TOLERANCE = 0.02
RATIO_TOLERANCE = 0.01


def headline(reports: Path) -> dict[str, dict[str, float]]:
    """``{"accuracy": {name: value}, "actual_ratio": {name: value}}`` of one reports folder."""
    base = json.loads((reports / "base-model.json").read_text(encoding="utf-8"))
    evaluation = json.loads((reports / "evaluate.json").read_text(encoding="utf-8"))
    rows = {f"g={g}": row for g, row in evaluation["ratios"].items()}
    rows |= {name: row for name, row in (evaluation.get("baselines") or {}).items() if row}
    accuracy = {name: row["accuracy"] for name, row in rows.items()}
    if base.get("accuracy") is not None:
        accuracy["base-model"] = base["accuracy"]
    ratios = {name: row["actual_ratio"] for name, row in rows.items() if "actual_ratio" in row}
    return {"accuracy": accuracy, "actual_ratio": ratios}


def largest_deviation(committed: dict[str, float], fresh: dict[str, float]) -> tuple[float, str | None]:
    """(largest |fresh - committed|, its name); a metric missing on one side counts as infinite."""
    worst, where = 0.0, None
    for name in sorted(set(committed) | set(fresh)):
        gap = abs(fresh[name] - committed[name]) if name in committed and name in fresh else float("inf")
        if gap > worst:
            worst, where = gap, name
    return worst, where


def deviations(committed: dict[str, float], fresh: dict[str, float]) -> dict[str, float | None]:
    """``{name: fresh - committed}`` (rounded), None where one side lacks the metric."""
    return {name: round(fresh[name] - committed[name], 4) if name in committed and name in fresh else None
            for name in sorted(set(committed) | set(fresh))}


def environment(reports: Path) -> dict[str, Any]:
    """The ``environment`` a base-model report recorded (CPU capability, torch, transformers)."""
    return json.loads((reports / "base-model.json").read_text(encoding="utf-8")).get("environment", {})


def output_md5s(lock: Path) -> dict[str, str]:
    """``{out path: md5}`` of every stage output recorded in a dvc.lock."""
    stages = yaml.safe_load(lock.read_text(encoding="utf-8"))["stages"]
    return {out["path"]: out["md5"] for stage in stages.values() for out in stage.get("outs", [])}


def run_clone(clone: Path) -> float:
    """Clone HEAD, pull the data, ``dvc repro`` every stage with the clone's code; wall seconds."""
    env = clone_head(clone)
    started = time.perf_counter()
    subprocess.run([DVC, "repro"], cwd=clone, check=True, env=env)
    return round(time.perf_counter() - started, 1)


def compare(clone: Path, seconds: float) -> dict[str, Any]:
    """The JSON line: deviations of the clone's headline metrics from the committed ones."""
    committed, fresh = headline(ROOT / "reports"), headline(clone / "reports")
    accuracy, accuracy_at = largest_deviation(committed["accuracy"], fresh["accuracy"])
    ratio, ratio_at = largest_deviation(committed["actual_ratio"], fresh["actual_ratio"])
    ours, theirs = output_md5s(ROOT / "dvc.lock"), output_md5s(clone / "dvc.lock")
    environments = {"committed": environment(ROOT / "reports"), "clone": environment(clone / "reports")}
    return {
        "bench": "reproduce",
        "max_accuracy_deviation": round(accuracy, 4), "at": accuracy_at,
        "max_actual_ratio_deviation": round(ratio, 4), "ratio_at": ratio_at,
        "accuracy_deviations": deviations(committed["accuracy"], fresh["accuracy"]),
        "actual_ratio_deviations": deviations(committed["actual_ratio"], fresh["actual_ratio"]),
        "environments": environments,
        "same_environment": environments["committed"] == environments["clone"],
        "tolerances": {"accuracy": ACCURACY_TOLERANCE, "actual_ratio": RATIO_TOLERANCE},
        "outputs_differing": sorted(path for path in ours if theirs.get(path) != ours[path]),
        "repro_seconds": seconds,
        "pass": accuracy <= ACCURACY_TOLERANCE and ratio <= RATIO_TOLERANCE,
    }


def main() -> None:
    """Clone, reproduce, compare; print the JSON line; exit 1 when the contract is broken."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-reports", type=Path, default=None, help="copy the clone's reports here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tokenskip-reproduce-") as work:
        clone = Path(work) / "clone"
        result = compare(clone, run_clone(clone))
        if args.keep_reports is not None:
            shutil.copytree(clone / "reports", args.keep_reports, dirs_exist_ok=True)
    print(json.dumps(result))
    sys.exit(0 if result["pass"] else 1)


if __name__ == "__main__":
    main()
