"""TokenSkip quality over seeds: does fine-tuning keep the original model's accuracy?

For each seed (``--seeds``, default 0,1,2) a clone of the committed HEAD runs ``dvc repro
evaluate`` with ``base_model.seed`` and ``finetune.seed`` set to the seed (the clone shares this
repo's DVC cache, so a seed whose stages already ran comes from the run-cache). The original is
the base model without fine-tuning (evaluate's ``original`` baseline, same test problems). Targets,
averaged over the seeds:

- g = 1.0 within 1 point of the original;
- g = 0.6 with actual ratio <= 0.62 and accuracy within 3 points of the original;
- g = 0.5 within 6 points of the original;
- no seed below these accuracy targets by more than 2 points.

Prints ONE JSON line: per seed the original accuracy and, per ratio, accuracy, its difference from
the original and the actual ratio; the means; each target's verdict and ``pass``. Takes one
pipeline run per seed (about 20 minutes each on 2 cores; ``--reuse SEED=REPORTS`` takes a seed's
figures from a reports folder instead); run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from fresh_clone import DVC, clone_head

TARGETS = {"1.0": -0.01, "0.6": -0.03, "0.5": -0.06}  # accuracy minus the original's, at least
RATIO_0_6 = 0.62
PER_SEED_SLACK = 0.02


def run_seed(seed: int, clone: Path, keep: Path | None = None) -> dict[str, Any]:
    """Clone HEAD, set the seeds, ``dvc repro evaluate``; return the seed's figures.

    ``keep``: copy the seed's reports there (``seed-N/``), e.g. for ``experiments/seeds.py --reuse``.
    """
    env = clone_head(clone, share_cache=True)
    params_file = clone / "params.yaml"
    params = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    params["base_model"]["seed"] = params["finetune"]["seed"] = seed
    params["base_model"]["min_accuracy"] = 0.0  # measure every seed, a collapsed one included
    params_file.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    subprocess.run([DVC, "repro", "evaluate"], cwd=clone, check=True, env=env)
    if keep is not None:
        shutil.copytree(clone / "reports", keep / f"seed-{seed}", dirs_exist_ok=True)
    return seed_figures(clone / "reports")


def seed_figures(reports: Path) -> dict[str, Any]:
    """The original's accuracy and, per TokenSkip ratio, accuracy, difference and actual ratio."""
    evaluation = json.loads((reports / "evaluate.json").read_text(encoding="utf-8"))
    base = json.loads((reports / "base-model.json").read_text(encoding="utf-8"))
    original = evaluation["baselines"]["original"]["accuracy"]
    ratios = {
        g: {"accuracy": row["accuracy"], "vs_original": round(row["accuracy"] - original, 4),
            "actual_ratio": row["actual_ratio"]}
        for g, row in evaluation["ratios"].items()
    }
    return {"base_model_accuracy": base.get("accuracy"), "original": original, "ratios": ratios}


def verdict(runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Means over seeds and each target's verdict."""
    def mean(g: str, key: str) -> float:
        return round(statistics.fmean(run["ratios"][g][key] for run in runs.values()), 4)

    means = {g: {"vs_original": mean(g, "vs_original"), "actual_ratio": mean(g, "actual_ratio")}
             for g in TARGETS}
    checks = {f"g={g} mean within {-floor:.2f}": means[g]["vs_original"] >= floor
              for g, floor in TARGETS.items()}
    checks[f"g=0.6 mean actual ratio <= {RATIO_0_6}"] = means["0.6"]["actual_ratio"] <= RATIO_0_6
    checks[f"every seed within {PER_SEED_SLACK:.2f} of each target"] = all(
        run["ratios"][g]["vs_original"] >= floor - PER_SEED_SLACK - 1e-9
        for run in runs.values() for g, floor in TARGETS.items()
    )
    return {"means": means, "checks": checks, "pass": all(checks.values())}


def main() -> None:
    """Run every seed, print the JSON line; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--keep-reports", type=Path, default=None, help="copy each seed's reports here")
    parser.add_argument("--reuse", action="append", default=[], metavar="SEED=REPORTS",
                        help="take a seed's figures from a reports folder (base-model.json, evaluate.json) "
                        "instead of running it, e.g. 0=reports after make run with the default seeds")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    reused = {int(seed): Path(path) for seed, path in (item.split("=", 1) for item in args.reuse)}
    with tempfile.TemporaryDirectory(prefix="tokenskip-quality-") as work:
        runs = {seed: seed_figures(reused[seed]) if seed in reused
                else run_seed(seed, Path(work) / f"seed-{seed}", args.keep_reports) for seed in seeds}
    result = {"bench": "quality", "seeds": {str(s): run for s, run in runs.items()}, **verdict(runs)}
    print(json.dumps(result))
    sys.exit(0 if result["pass"] else 1)


if __name__ == "__main__":
    main()
