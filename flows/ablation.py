"""Does importance matter? A Prefect flow that runs one DVC experiment per pruning variant through
evaluate and compares them at matched actual ratios (the comparison: :mod:`tokenskip.evaluate.ablation`).

    tokenskip ablation                                   # self-information vs random (+ llmlingua2)
    tokenskip ablation --variant random --ratio 0.6      # a subset
    dvc exp show                                         # the experiments, their params and metrics
    dvc exp apply ablation-random-<stamp>                # one of them back into the workspace

Each variant is ``dvc exp run --name ablation-<variant>-<stamp> -S prune.scorer=<variant> ...
evaluate``: DVC re-runs prune, validate, finetune and evaluate (base-model and generate come from
the cache) and keeps the experiment; the flow reads its reports from the workspace right after the
run. The register stage is not run, so no registry alias moves. At the end the workspace's
params.yaml, dvc.lock and reports/ are put back as they were and ``dvc checkout`` restores the
outputs, then reports/ablation.json and reports/ablation.png are written and logged to an MLflow
parent run (tag ``tokenskip.role=ablation``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from tokenskip.core.errors import TokenSkipError, exit_code_of
from tokenskip.core.io import read_json, read_jsonl, write_json
from tokenskip.core.params import Params, load_params
from tokenskip.evaluate import ablation as ab
from tokenskip.evaluate.statistics import BootstrapSettings
from tokenskip_flows.support import (
    StageFailed,
    run_streaming,
    stage_env,
    stage_exit_code,
    tool_path,
)

FLOW_NAME = "tokenskip-ablation"
TARGET = "evaluate"  # the experiments stop here: register (the registry) is never run
STAGES_RUN = 4  # prune, validate, finetune, evaluate: the timeout is flow.stage_timeout_s each
SNAPSHOT = ("params.yaml", "dvc.lock", "reports")
PER_QUESTION = Path("artifacts/evaluate/per_question.jsonl")


def has_classifier(repo: Path, scorer_model: str | None) -> bool:
    """Whether ``prune.scorer_model`` names a local token-classifier folder (llmlingua2's model)."""
    if not scorer_model:
        return False
    config = (repo / scorer_model).expanduser() / "config.json"
    if not config.is_file():
        return False
    architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
    return any(a.endswith("ForTokenClassification") for a in architectures)


def _restore(saved: Path, repo: Path, names: Sequence[str]) -> None:
    for name in names:
        source, target = saved / name, repo / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True)
        elif source.exists():
            shutil.copy2(source, target)


@contextmanager
def baseline_kept(repo: Path) -> Iterator[Path]:
    """Snapshot params.yaml, dvc.lock and reports/; put them back afterwards (even on failure) and
    ``dvc checkout --force`` the outputs dvc.lock names. Yields the snapshot folder."""
    saved = Path(tempfile.mkdtemp(prefix="tokenskip-ablation-"))
    _restore(repo, saved, SNAPSHOT)
    try:
        yield saved
    finally:
        _restore(saved, repo, SNAPSHOT)
        done = subprocess.run([tool_path("dvc"), "checkout", "--force", "--quiet"], cwd=repo,
                              env=stage_env(os.environ, {}), capture_output=True, text=True)
        if done.returncode != 0:
            print(f"warning: dvc checkout after the ablation: {done.stderr.strip()[-500:]}", file=sys.stderr)
        shutil.rmtree(saved, ignore_errors=True)


@task(name="dvc-exp-run", cache_policy=NO_CACHE)
def run_variant(variant: str, repo: str, name: str, overrides: list[str], timeout_s: float) -> dict[str, Any]:
    """``dvc exp run --name <name> -S ... evaluate``; the variant's evaluate report and per-question
    rows, read from the workspace right after the run."""
    logger = get_run_logger()
    root = Path(repo)
    cmd = [tool_path("dvc"), "exp", "run", "--name", name,
           *[arg for item in overrides for arg in ("-S", item)], TARGET]
    logger.info("%s: %s", variant, " ".join(cmd[1:]))
    code, tail, seconds = run_streaming(cmd, root, stage_env(os.environ, {}), timeout_s,
                                        lambda line: logger.info("%s", line))
    if code is None:
        raise StageFailed(f"ablation-{variant}", f"timed out after {timeout_s:g} s", tail, None)
    if code != 0:
        why = f"failed (dvc exit code {code})"
        raise StageFailed(f"ablation-{variant}", why, tail, stage_exit_code(tail))
    logger.info("%s: experiment %s in %.1f s", variant, name, seconds)
    return {"evaluate": read_json(root / "reports" / "evaluate.json"),
            "per_question": read_jsonl(root / PER_QUESTION), "experiment": name,
            "overrides": overrides, "seconds": round(seconds, 1)}


def plan_variants(
    repo: Path, params: Params, variants: Sequence[str] | None, ratios: Sequence[float] | None,
    baselines: bool,
) -> tuple[list[str], list[str]]:
    """(variants, overrides common to all of them), checked before anything runs."""
    classifier = has_classifier(repo, params.prune.scorer_model)
    chosen = list(variants) if variants else ab.default_variants(classifier)
    if ab.REFERENCE not in chosen:
        chosen.insert(0, ab.REFERENCE)
    try:
        for variant in chosen:
            ab.variant_overrides(variant, classifier)
    except ValueError as exc:
        raise TokenSkipError(str(exc)) from None
    common = []
    if ratios:
        unknown = [g for g in ratios if g not in params.prune.ratios]
        if unknown:
            raise TokenSkipError(f"ablation ratios {unknown} are not in prune.ratios {params.prune.ratios}")
        common.append("evaluate.ratios=[" + ",".join(f"{g:g}" for g in sorted(ratios)) + "]")
    if not baselines:
        common.append("evaluate.baselines=false")
    return chosen, common


def _log_parent(params: Params, repo: Path, files: Sequence[Path], rows: list[dict[str, Any]],
                tags: dict[str, str]) -> str:
    """An MLflow parent run (tag tokenskip.role=ablation) with the report, plot and accuracies."""
    from mlflow.entities import Metric

    from tokenskip.tracking.retries import Retry
    from tokenskip.tracking.store import connect, resolve_uri

    cfg = params.mlflow
    uri = resolve_uri(cfg.tracking_uri, repo, os.environ)
    retry = Retry(cfg.retries, cfg.retry_backoff_s)
    tracking = connect(uri, cfg.experiment, str(repo / cfg.artifact_location), retry)
    client = tracking.client
    run = tracking.call("create the ablation run",
                        lambda: client.create_run(tracking.experiment_id, tags=tags))
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric(f"{key}.{r['variant']}.g{r['g']}", float(r[key]), now, 0)
               for r in rows for key in ("accuracy", "actual_ratio", "difference") if r.get(key) is not None]
    tracking.call("log the accuracies", lambda: client.log_batch(run_id, metrics=metrics))
    for path in files:
        tracking.call(f"log {path.name}", lambda p=path: client.log_artifact(run_id, str(p), "ablation"))
    tracking.call("end the ablation run", lambda: client.set_terminated(run_id, "FINISHED"))
    return run_id


@flow(name=FLOW_NAME, log_prints=True)
def tokenskip_ablation(
    repo_dir: str | None = None, variants: list[str] | None = None, ratios: list[float] | None = None,
    baselines: bool = True,
) -> dict[str, Any]:
    """Run one DVC experiment per variant through evaluate, compare them against self-information,
    write reports/ablation.json and .png, log them to MLflow; returns the ablation report."""
    logger = get_run_logger()
    repo = Path(repo_dir).resolve() if repo_dir else Path.cwd()
    params = load_params(repo / "params.yaml")
    chosen, common = plan_variants(repo, params, variants, ratios, baselines)
    classifier = has_classifier(repo, params.prune.scorer_model)
    stamp = time.strftime("%m%d-%H%M%S", time.gmtime())
    timeout = params.flow.stage_timeout_s * STAGES_RUN
    results: dict[str, dict[str, Any]] = {}
    with baseline_kept(repo) as saved:
        for variant in chosen:
            _restore(saved, repo, ["params.yaml"])  # every experiment starts from the baseline's params
            overrides = [*ab.variant_overrides(variant, classifier), *common]
            results[variant] = run_variant.with_options(task_run_name=variant)(
                variant, str(repo), f"ablation-{variant}-{stamp}", overrides, timeout)
    cfg = params.evaluate
    settings = BootstrapSettings(cfg.bootstrap_resamples, cfg.confidence, cfg.bootstrap_seed)
    report = ab.compare_variants(results, settings)
    json_path, png_path = repo / "reports" / "ablation.json", repo / "reports" / "ablation.png"
    write_json(json_path, report)
    ab.plot_ablation(png_path, report)
    rows = ab.table_rows(report)
    tags = {"mlflow.runName": f"ablation-{stamp}", "tokenskip.role": "ablation",
            "tokenskip.ablation.variants": ",".join(chosen), "tokenskip.ablation.overrides": " ".join(common)}
    run_id = _log_parent(params, repo, [json_path, png_path], rows, tags)
    create_table_artifact(rows, key="tokenskip-ablation",
                          description=f"Accuracy per variant and ratio vs {ab.REFERENCE}; run {run_id}")
    logger.info("ablation: %s -> %s (MLflow run %s)", ", ".join(chosen), json_path, run_id)
    return report


def run_ablation(repo: Path, variants: list[str] | None, ratios: list[float] | None, baselines: bool) -> int:
    """Run the flow and print its table; the exit code (0, 2 bad input, 1 a failed experiment)."""
    from tokenskip_flows.reports import markdown_table

    try:
        report = tokenskip_ablation(repo_dir=str(repo), variants=variants, ratios=ratios, baselines=baselines)
    except (StageFailed, TokenSkipError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_code_of(exc)
    rows = ab.table_rows(report)
    print("\n" + markdown_table(rows, list(rows[0]) if rows else []))
    return 0

