"""How robust is the embedded default's base model to its seed? One base-model stage per seed.

For each seed (``--seeds``, default 0-4) the real ``tokenskip base-model`` command trains the
bootstrap model with params.yaml's ``base_model`` section, ``base_model.seed`` (and
``finetune.seed``) set to the seed, in a temporary folder, on the tracked synthetic data; its
report gives the held-out accuracy and the training seconds. Targets: accuracy >= 0.90 and
training <= 360 s for every seed on 2 cores.

Prints ONE JSON line: per seed the accuracy, training seconds, steps and final loss; the minimum
and mean accuracy; whether every seed met both targets. ``--write`` also writes the table into
docs/reproducibility.md between the ``seeds:begin`` / ``seeds:end`` markers (drawn by
tokenskip.register.tables, the renderer of every table). ``--reuse SEED=REPORT`` takes a seed's
figures from the base-model report of a run with the same ``base_model`` params and that seed
(``reports/base-model.json`` after ``dvc repro``, for seed 0) instead of training it again: the
stage is deterministic, so the accuracy is the same bits; the seconds are that run's. Run it on a
quiet machine: training wants both cores, and a loaded box changes the seconds (not the accuracy:
the model is the same bits for the same seed on one machine).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import typer
import yaml

from tokenskip.register.tables import markdown_table, replace_block

ROOT = Path(__file__).resolve().parents[1]
TARGET_ACCURACY = 0.90
TARGET_TRAIN_S = 360.0
DOC = ROOT / "docs" / "reproducibility.md"
BEGIN, END = "<!-- seeds:begin (python experiments/seeds.py --write) -->", "<!-- seeds:end -->"


def report_figures(report: Path) -> dict[str, Any]:
    """The experiment's figures from one base-model report."""
    figures = json.loads(report.read_text(encoding="utf-8"))
    return {key: figures[key] for key in ("accuracy", "train_seconds", "steps", "final_loss", "stopped_by")}


def train_seed(seed: int, work: Path) -> dict[str, Any]:
    """Run the base-model stage with ``seed`` in ``work``; return the figures of its report."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["base_model"]["seed"] = seed
    params["base_model"]["min_accuracy"] = 0.0  # measure every seed, a collapsed one included
    params["finetune"]["seed"] = seed
    folder = work / f"seed-{seed}"
    folder.mkdir(parents=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    report = folder / "base-model.json"
    command = [sys.executable, "-m", "tokenskip", "base-model", "--data", str(ROOT / "data"), "--out",
               str(folder / "base"), "--report", str(report), "--params", str(folder / "params.yaml")]
    subprocess.run(command, check=True, env={**os.environ, "TQDM_DISABLE": "1"})
    return report_figures(report)


def summary(runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The JSON line: per-seed figures, min / mean accuracy and the verdict on both targets."""
    accuracies = [run["accuracy"] for run in runs.values()]
    return {
        "bench": "seeds",
        "seeds": {str(seed): run for seed, run in runs.items()},
        "min_accuracy": min(accuracies),
        "mean_accuracy": round(statistics.fmean(accuracies), 4),
        "max_train_seconds": max(run["train_seconds"] for run in runs.values()),
        "targets": {"accuracy": TARGET_ACCURACY, "train_seconds": TARGET_TRAIN_S},
        "all_pass": all(run["accuracy"] >= TARGET_ACCURACY and run["train_seconds"] <= TARGET_TRAIN_S
                        for run in runs.values()),
    }


def seeds_table(result: dict[str, Any]) -> str:
    """The Markdown table written between the markers, and the verdict under it."""
    rows = [{"base_model.seed": seed, "held-out accuracy": f"{run['accuracy']:.3f}",
             "training (s)": f"{run['train_seconds']:.0f}", "steps": run["steps"],
             "final loss": f"{run['final_loss']:.4f}"} for seed, run in result["seeds"].items()]
    verdict = "yes" if result["all_pass"] else "no"
    return (f"{markdown_table(rows)}\n\nMinimum {result['min_accuracy']:.3f}, "
            f"mean {result['mean_accuracy']:.3f}; every seed >= {TARGET_ACCURACY} "
            f"within {TARGET_TRAIN_S:.0f} s: {verdict}.")


def write_table(result: dict[str, Any], doc: Path = DOC) -> None:
    """Replace the text between the seeds markers of ``doc`` with the table."""
    text = replace_block(doc.read_text(encoding="utf-8"), BEGIN, END, seeds_table(result), str(doc))
    doc.write_text(text, encoding="utf-8")


def main(
    seeds: str = typer.Option("0,1,2,3,4", "--seeds", help="Comma-separated seeds to train"),
    write: bool = typer.Option(False, "--write", help="Write the table into docs/reproducibility.md"),
    reuse: list[str] = typer.Option([], "--reuse", metavar="SEED=REPORT",
                                    help="Take SEED's figures from a base-model report of the same params"),
) -> None:
    """Train one base model per seed; print the JSON line (and write the table)."""
    reused = {int(seed): Path(path) for seed, path in (item.split("=", 1) for item in reuse)}
    with tempfile.TemporaryDirectory(prefix="tokenskip-seeds-") as work:
        runs = {seed: report_figures(reused[seed]) if seed in reused else train_seed(seed, Path(work))
                for seed in (int(item) for item in seeds.split(","))}
    result = summary(runs)
    print(json.dumps(result))
    if write:
        write_table(result)


if __name__ == "__main__":
    typer.run(main)
