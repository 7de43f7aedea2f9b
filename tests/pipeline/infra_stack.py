"""The scale-out stack for tests: PostgreSQL + S3 (moto) + MLflow server, started by the real
infra/ scripts on free 127.0.0.1 ports with TOKENSKIP_INFRA_DIR in a temp folder, stopped at the end."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
SERVICES = ("postgres", "s3", "mlflow")  # start order; stopped in reverse
STACK_KEYS = ("PREFECT_API_URL", "S3_ENDPOINT_URL", "POSTGRES_PORT", "S3_PORT", "MLFLOW_PORT")


@dataclass
class Stack:
    """A running stack: its state folder and what the start scripts recorded for clients."""

    root: Path

    @property
    def recorded(self) -> dict[str, str]:
        """The env file (KEY=VALUE lines) as a dict."""
        lines = (self.root / "env").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    @property
    def tracking_uri(self) -> str:
        return self.recorded["MLFLOW_TRACKING_URI"]

    def base_env(self) -> dict[str, str]:
        """This process's environment without any MLflow/stack setting, plus TOKENSKIP_INFRA_DIR."""
        base = {k: v for k, v in os.environ.items() if k not in STACK_KEYS and not k.startswith("MLFLOW_")}
        return {**base, "TOKENSKIP_INFRA_DIR": str(self.root)}

    def env(self) -> dict[str, str]:
        """What a client process of the stack sees: ``set -a; . $TOKENSKIP_INFRA_DIR/env``."""
        return {**self.base_env(), **self.recorded}

    def script(self, name: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run infra/<name>.sh on this stack; fail the test with its output when it fails."""
        env = self.base_env()
        done = subprocess.run(
            ["bash", str(INFRA / f"{name}.sh")], env=env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"infra/{name}.sh failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        return done

    def s3(self):
        """A boto3 S3 client on the stack's endpoint and keys."""
        import boto3

        rec = self.recorded
        return boto3.client(
            "s3",
            endpoint_url=rec["AWS_ENDPOINT_URL"],
            aws_access_key_id=rec["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=rec["AWS_SECRET_ACCESS_KEY"],
            region_name=rec["AWS_DEFAULT_REGION"],
        )

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key in ``bucket`` under ``prefix``."""
        pages = self.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.fixture(scope="session")
def infra_stack() -> Iterator[Stack]:
    """PostgreSQL, S3 and MLflow through infra/start-*.sh; infra/stop-*.sh at teardown."""
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)")
    # not under pytest's tmp root: that one is private to root, and PostgreSQL runs as `postgres`
    root = Path(tempfile.mkdtemp(prefix="tokenskip-infra-"))
    root.chmod(0o755)
    stack = Stack(root)
    started: list[str] = []
    try:
        for service in SERVICES:
            started.append(service)
            stack.script(f"start-{service}")
        yield stack
    finally:
        for service in reversed(started):
            subprocess.run(
                ["bash", str(INFRA / f"stop-{service}.sh")],
                env=stack.base_env(),
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(root, ignore_errors=True)
