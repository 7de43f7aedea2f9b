"""`mlflow models serve` of the smoke run's registered champion: a bad request (ratio 1.7, NaN or
untrained, max_new_tokens -5, an empty or a 1 MB question) is a 400 whose JSON message is one line
naming the field, with no stack trace and no echo of the input; the next request is answered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pipeline.flow_helpers import free_port, post_json, stop_process_group, wait_until_serving

pytestmark = pytest.mark.slow
QUESTION = "Tom has 3 apples and buys 5 more. How many apples does he have now?"
STARTUP_S = 300


@pytest.fixture(scope="module")
def scoring_server(smoke_run: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow models serve -m models:/<champion>` on a free port; yields its URL."""
    folder = tmp_path_factory.mktemp("scoring")
    name = smoke_run["reports"]["register"]["registered_model"]
    bin_dir, port = Path(sys.executable).parent, free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": smoke_run["uri"], "TOKENSKIP_WEIGHTS_CACHE": str(folder / "weights"),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    log = folder / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(bin_dir / "mlflow"), "models", "serve", "-m", f"models:/{name}@champion", "--env-manager", "local",
             "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{url}/ping", proc, log, "mlflow models serve", STARTUP_S)
        yield url
    finally:
        stop_process_group(proc)


def invoke(url: str, body: str) -> tuple[int, str]:
    return post_json(f"{url}/invocations", body.encode(), timeout_s=120)


BAD = {  # request -> (JSON body, the message's start)
    "ratio 1.7": ('{"inputs": ["Q?"], "params": {"ratio": 1.7}}', "params.ratio must be in (0, 1] (got 1.7)"),
    "ratio NaN": ('{"inputs": ["Q?"], "params": {"ratio": NaN}}', "params.ratio must be in (0, 1] (got nan)"),
    "untrained ratio 0.3": ('{"inputs": ["Q?"], "params": {"ratio": 0.3}}',
                            "params.ratio must be one of the trained ratios 0.6, 0.8 and 1.0"),
    "max_new_tokens -5": ('{"inputs": ["Q?"], "params": {"max_new_tokens": -5}}',
                          "params.max_new_tokens must be a positive integer (got -5)"),
    "empty question": ('{"inputs": [""]}', "inputs[0]: the question is empty"),
    "1 MB question": (json.dumps({"inputs": ["7 + 5 = 12. " * 87_500]}), "inputs[0]: the prompt (1050"),
}


def test_bad_requests_are_a_400_with_one_line_naming_the_field(scoring_server: str) -> None:
    good = json.dumps({"inputs": [QUESTION], "params": {"ratio": 0.6, "max_new_tokens": 16}})
    for name, (body, says) in BAD.items():
        status, text = invoke(scoring_server, body)
        print(f"{name}: {status} {text[:240]}")
        error = json.loads(text)
        assert status == 400 and error["error_code"] == "INVALID_PARAMETER_VALUE", (name, status, text)
        assert error["message"].startswith(says), (name, error["message"])
        assert "\n" not in error["message"] and "stack_trace" not in error and len(text) < 1000, name
        status, text = invoke(scoring_server, good)
        assert status == 200 and json.loads(text)["predictions"][0]["ratio"] == 0.6, name
