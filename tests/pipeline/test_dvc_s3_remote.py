"""The DVC remote on object storage: ``dvc push`` of data/ and a stage output to the stack's S3
endpoint (moto, started by infra/start-s3.sh), then ``dvc pull`` into an empty cache and workspace
gives the same bytes. Runs in a clone of the committed repository, never in this checkout."""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path

import pytest

from tests.pipeline.flow_helpers import DVC, clone_env, clone_small, run
from tests.pipeline.infra_stack import Stack

pytestmark = pytest.mark.slow
OUTPUTS = ["data", "models/base"]  # data.dvc and the base-model stage's output


def digests(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under the OUTPUTS folders."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in OUTPUTS
        for path in sorted((root / folder).rglob("*"))
        if path.is_file()
    }


def test_push_and_pull_data_and_a_stage_output_through_s3(
    infra_stack: Stack, repo_root: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    clone = clone_small(repo_root, tmp_path / "clone")  # data/ from the in-repo remote
    stack_env = {k: v for k, v in infra_stack.env().items() if k != "PATH"}  # run() puts the venv first
    env = {**stack_env, **clone_env(clone)}
    # the base-model stage's output without training it again: a tiny model, committed by DVC as
    # the stage's result (dvc commit records it in dvc.lock and the cache, as `dvc repro` would)
    shutil.copytree(tiny_model_dir, clone / "models/base")
    (clone / "reports").mkdir(exist_ok=True)
    (clone / "reports/base-model.json").write_text('{"accuracy": 0.0}')
    run([DVC, "commit", "-q", "-f", "base-model"], clone, env=env)
    before = digests(clone)
    assert any(p.startswith("data/") for p in before) and any(p.startswith("models/base/") for p in before)

    # a team's remote: the bucket of infra/start-s3.sh, the endpoint it recorded
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    recorded = infra_stack.recorded
    remote_url = f"{recorded['TOKENSKIP_DVC_REMOTE_URL'].rsplit('/', 1)[0]}/{prefix}"
    run([DVC, "remote", "add", "-d", "shared", remote_url], clone, env=env)
    run([DVC, "remote", "modify", "shared", "endpointurl", recorded["AWS_ENDPOINT_URL"]], clone, env=env)
    run([DVC, "push", "-q", "data.dvc", "base-model"], clone, env=env, timeout=300)
    bucket = remote_url.removeprefix("s3://").split("/", 1)[0]
    keys = infra_stack.keys(bucket, f"{prefix}/")
    assert len(keys) >= len(before)  # every file (plus the .dir listings) is an object in the bucket

    # nothing local left: no cache, no workspace copies, not even the in-repo remote
    for gone in [".dvc/cache", "dvc-storage", *OUTPUTS]:
        shutil.rmtree(clone / gone, ignore_errors=True)
    run([DVC, "pull", "-q", "data.dvc", "base-model"], clone, env=env, timeout=300)
    assert digests(clone) == before
    status = run([DVC, "status", "-c", "data.dvc", "base-model"], clone, env=env)
    assert "in sync" in status.stdout
