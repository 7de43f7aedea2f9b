"""The scheduled deployment ``tokenskip-nightly`` of the pipeline flow.

The schedule comes from params.yaml (``flow.cron``, ``flow.timezone``; default 02:00 UTC nightly).

    tokenskip deploy                                  # register + run scheduled runs in this process
    infra/start-prefect.sh && infra/start-worker.sh   # Prefect server + a worker on a process pool
    set -a; . .infra/env; set +a                      # PREFECT_API_URL, TOKENSKIP_WORK_POOL
    tokenskip deploy --pool NAME                      # register on the pool (default: $TOKENSKIP_WORK_POOL)
    prefect deployment run tokenskip-pipeline/tokenskip-nightly   # one run now, on the worker

All need a Prefect API (PREFECT_API_URL; infra/start-prefect.sh starts one).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect.schedules import Cron

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.params import load_params
from tokenskip_flows.pipeline import FLOW_NAME, tokenskip_pipeline

DEPLOYMENT_NAME = "tokenskip-nightly"
ENTRYPOINT = "flows/pipeline.py:tokenskip_pipeline"
FULL_NAME = f"{FLOW_NAME}/{DEPLOYMENT_NAME}"


def deployment_options(repo: Path) -> dict[str, Any]:
    """The deployment's schedule, parameters and metadata, from ``repo/params.yaml``."""
    cfg = load_params(repo / "params.yaml").flow
    return {
        "schedules": [Cron(cfg.cron, timezone=cfg.timezone)],
        "parameters": {"repo_dir": str(repo)},  # the checkout it was deployed from, not the install's
        "tags": ["tokenskip"],
        "description": "TokenSkip pipeline (dvc repro of every stage), nightly.",
    }


def build_deployment(repo: Path) -> Any:
    """A RunnerDeployment of the flow, run from ``repo`` (the current directory must be ``repo``)."""
    return tokenskip_pipeline.to_deployment(name=DEPLOYMENT_NAME, **deployment_options(repo))


def serve(repo: Path) -> None:
    """Register the deployment and execute its runs here (one at a time) until interrupted."""
    from prefect import serve as prefect_serve

    os.chdir(repo)
    prefect_serve(build_deployment(repo), limit=1)


def process_job_variables(repo: Path) -> dict[str, Any]:
    """Job variables of a process-pool run: the repository's own library (src/) first on the import
    path, so the worker and the stages it starts run the code of the checkout it was deployed from
    (not another install). The flow is ENTRYPOINT's file in that checkout; the modules it imports
    (``tokenskip_flows``, the folder flows/ installed under that name) come from the install."""
    return {"env": {"PYTHONPATH": os.pathsep.join([str(repo / "src"), str(repo)])}}


def deploy_to_pool(pool: str, repo: Path) -> Any:
    """Register the deployment on a process work pool (created if missing); return its id.

    The pool's worker runs each flow run in a subprocess in ``repo`` (a pull step sets the
    working directory); no image is built or pushed.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        except ObjectAlreadyExists:
            kind = client.read_work_pool(pool).type
            if kind != "process":
                raise TokenSkipError(f"work pool {pool!r}: type {kind!r}, not 'process'; deploy to it "
                                     "from a git source with an image (infra/README-prefect.md)") from None
    source = tokenskip_pipeline.from_source(source=str(repo), entrypoint=ENTRYPOINT)
    return source.deploy(name=DEPLOYMENT_NAME, work_pool_name=pool, build=False, push=False,
                         job_variables=process_job_variables(repo), concurrency_limit=1,
                         print_next_steps=False, **deployment_options(repo))

