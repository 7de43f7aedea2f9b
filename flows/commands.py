"""``tokenskip run``, ``tokenskip restore``, ``tokenskip deploy`` and ``tokenskip ablation``: the
Prefect flows, the workspace's restore and the scheduled deployment as sub-commands of the
tokenskip CLI (entry points of the group ``tokenskip.commands`` in pyproject.toml, loaded by
src/tokenskip/cli.py only for them).

Prefect is imported inside the commands, after the global options have set the log level.
"""

from __future__ import annotations

from pathlib import Path

import typer


def run(
    repo: Path = typer.Option(Path("."), help="Repository root (dvc.yaml, params.yaml)"),
    stage: list[str] | None = typer.Option(
        None, "--stage", help="Run only this stage (repeatable; default: every stage)"),
    overrides: list[str] | None = typer.Option(
        None, "--set", "-S", help="Params override key=value for this run, applied by `dvc exp run -S` "
        "(the run is a DVC experiment); validated before DVC runs; a failed run leaves params.yaml as "
        "it was; repeatable"),
) -> None:
    """Run the pipeline flow once: a Prefect task per DVC stage, then the results table.

    Exit code: 0, or the failed stage's own (2 bad input, 3 validation failed, 4 no champion when
    gates.require_champion asks for one), else 1.
    """
    from tokenskip_flows.pipeline import run_once

    code = run_once(repo.resolve(), stage or None, overrides or None)
    raise typer.Exit(code)


def restore(
    repo: Path = typer.Option(Path("."), help="Repository root (dvc.yaml, params.yaml)"),
) -> None:
    """After a failed or killed run: put back the last committed run's params.yaml, dvc.lock and
    reports (from git: `cache: false` metrics are not in DVC's cache), then every stage's outputs
    (from DVC's cache). The same as `git checkout -- reports params.yaml dvc.lock && dvc checkout
    --force`; uncommitted changes to those files are discarded (docs/guarantees.md).
    """
    from tokenskip_flows.workspace import restore_outputs

    raise typer.Exit(restore_outputs(repo.resolve(), typer.echo))


def ablation(
    repo: Path = typer.Option(Path("."), help="Repository root (dvc.yaml, params.yaml)"),
    variant: list[str] | None = typer.Option(
        None, "--variant", help="A pruning variant: self-information, random, llmlingua2 or "
        "no-force-digits; repeatable (default: self-information, random, and llmlingua2 when "
        "prune.scorer_model names a token classifier)"),
    ratio: list[float] | None = typer.Option(
        None, "--ratio", help="Evaluate only this ratio g (one of prune.ratios; repeatable; default: "
        "evaluate.ratios)"),
    baselines: bool = typer.Option(
        True, "--baselines/--no-baselines", help="Also evaluate the base-model baselines in each experiment"),
) -> None:
    """Does importance matter? One DVC experiment per pruning variant through evaluate, compared
    at matched actual ratios with paired intervals against self-information.

    Writes reports/ablation.json and reports/ablation.png, logs them to an MLflow run (tag
    tokenskip.role=ablation); the experiments stay in `dvc exp show`. No registry alias moves.
    """
    from tokenskip_flows.ablation import run_ablation

    raise typer.Exit(run_ablation(repo.resolve(), variant or None, ratio or None, baselines))


def deploy(
    pool: str | None = typer.Option(
        None, envvar="TOKENSKIP_WORK_POOL", help="Register the deployment on this Prefect process work "
        "pool (its worker runs it) instead of serving it here"),
    repo: Path = typer.Option(Path("."), help="Repository root"),
) -> None:
    """Serve the scheduled deployment tokenskip-nightly, or put it on a work pool.

    The cron comes from params flow.cron. Served in this process until Ctrl-C, or registered on a
    process work pool with --pool. Needs a Prefect server (PREFECT_API_URL).
    """
    from tokenskip_flows.deploy import FULL_NAME, deploy_to_pool, serve

    root = repo.resolve()
    if not pool:
        serve(root)
        return
    name = pool
    deployment_id = deploy_to_pool(name, root)
    typer.echo(f"deployment {FULL_NAME} ({deployment_id}) on pool {name!r}; its runs need a worker: "
               f"infra/start-worker.sh (or prefect worker start --pool {name})")
