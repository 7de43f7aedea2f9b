"""The paper's path end to end on CPU: profiles/hf-smoke.yaml through `dvc repro`, then the
champion loaded and asked from another directory once the working copy and models/ are gone.

The profile differs from the embedded default in every stage: a local ``LlamaForCausalLM`` with a
byte-fallback BPE tokenizer and a Llama-3-style chat template (base-model records a pointer, it
trains nothing), GSM8K data, the ``llmlingua2`` scorer on a local XLM-RoBERTa token classifier,
LoRA r8 / alpha 16 with ``merge: false`` (adapter-only versions over a base logged once).
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow
QUESTION = "Tom has 3 apples and buys 5 more. How many apples does he have now?"
PREDICT = """
import json, sys
import mlflow
model = mlflow.pyfunc.load_model(sys.argv[1])
print(json.dumps({"default": model.predict([sys.argv[2]]),
                  "ratio_0.6": model.predict([sys.argv[2]], params={"ratio": 0.6})}))
"""


def test_every_stage_ran_the_real_model_path(smoke_run: dict) -> None:
    clone, reports = smoke_run["clone"], smoke_run["reports"]
    params = yaml.safe_load((clone / "params.yaml").read_text())
    pointer = json.loads((clone / "models" / "base" / "model.json").read_text())
    assert pointer["source"] == "local" and pointer["name"] == "models/smoke/llama"
    assert reports["base-model"]["trained"] is False
    # every stage computes on torch's AVX2 kernels and MKL's AVX2 code path, whatever the x86 CPU
    environment = reports["base-model"]["environment"]
    assert environment["mkl_cbwr"] == "AVX2"
    if platform.machine() == "x86_64" and " avx2" in Path("/proc/cpuinfo").read_text():
        assert environment["cpu_capability"] == "AVX2", environment
    config = json.loads((clone / "models" / "smoke" / "llama" / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert reports["generate"]["kept"] >= 8  # the recited GSM8K training problems
    eos_ids = json.loads((clone / "models" / "smoke" / "llama" / "generation_config.json").read_text())["eos_token_id"]
    decoding = {"eos_token_ids": sorted(eos_ids), "repetition_penalty": 1.0}
    assert reports["generate"]["decoding"] == {**decoding, "max_new_tokens": params["generate"]["max_new_tokens"]}
    assert reports["evaluate"]["decoding"] == {**decoding, "max_new_tokens": params["evaluate"]["max_new_tokens"]}
    assert reports["prune"]["scorer"] == "llmlingua2"
    tolerance = params["validate"]["ratio_tolerance"]
    for ratio, figures in reports["prune"]["ratios"].items():
        assert abs(figures["actual_ratio_mean"] - float(ratio)) <= tolerance, (ratio, figures)
    assert reports["validate"]["success"] is True
    assert reports["finetune"]["method"] == "lora" and reports["finetune"]["trainable_parameters"] > 0
    assert sorted(p.name for p in (clone / "models" / "tokenskip").iterdir() if p.is_dir()) == ["adapter"]
    evaluation = reports["evaluate"]
    assert sorted(evaluation["ratios"]) == ["0.6", "0.8", "1.0"]
    assert evaluation["baselines"]["original"]["accuracy"] > 0  # it recites 8 of the 12 test problems
    register = reports["register"]
    assert len(register["versions"]) == 3 and register["champion"] is not None


def test_versions_reference_one_logged_copy_of_the_local_base(smoke_run: dict, tmp_path: Path) -> None:
    import mlflow
    from mlflow import MlflowClient
    from tokenskip.tracking.store import globally

    client = MlflowClient(smoke_run["uri"])
    name = smoke_run["reports"]["register"]["registered_model"]
    versions = client.search_model_versions(f"name = '{name}'")
    assert len(versions) == 3
    finetune_run_ids = {client.get_logged_model(v.source.removeprefix("models:/")).tags["finetune_run_id"] for v in versions}
    assert len(finetune_run_ids) == 1
    base_files = {a.path: a.file_size for a in client.list_artifacts(finetune_run_ids.pop(), "base")}
    assert "base/model.safetensors" in base_files and "base/tokenizer.json" in base_files
    print(f"base logged once: {sum(base_files.values()) / 1e6:.2f} MB")
    for version in versions:
        with globally(smoke_run["uri"]):
            folder = Path(mlflow.artifacts.download_artifacts(
                f"models:/{name}/{version.version}", dst_path=str(tmp_path / version.version)))
        files = {p.name for p in folder.rglob("*") if p.is_file()}
        assert "adapter_model.safetensors" in files and "model.safetensors" not in files, files
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        print(f"version {version.version} (g={version.tags['ratio']}): {size / 1e6:.2f} MB")


def test_champion_loads_and_answers_on_another_host(smoke_run: dict, tmp_path: Path) -> None:
    """The working copy (with models/) is moved away; a process in another directory, reaching
    only the tracking server, loads the champion and answers at its default ratio and at 0.6.
    The session's smoke clone is moved back afterwards, for the other tests that use it."""
    clone = smoke_run["clone"]
    moved = clone.rename(clone.with_name("moved-away"))
    try:
        _ask_the_champion(smoke_run, tmp_path)
    finally:
        moved.rename(clone)


def _ask_the_champion(smoke_run: dict, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    name = smoke_run["reports"]["register"]["registered_model"]
    env = {"MLFLOW_TRACKING_URI": smoke_run["uri"], "TOKENSKIP_WEIGHTS_CACHE": str(tmp_path / "cache"),
           "HF_HUB_OFFLINE": "1", "PATH": str(Path(sys.executable).parent)}
    result = subprocess.run([sys.executable, "-c", PREDICT, f"models:/{name}@champion", QUESTION],
                            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    champion_ratio = smoke_run["reports"]["register"]["champion"]["ratio"]
    assert [row["ratio"] for row in answers["default"]] == [champion_ratio]
    assert [row["ratio"] for row in answers["ratio_0.6"]] == [0.6]
    for rows in answers.values():
        assert set(rows[0]) == {"cot", "answer", "ratio", "output", "cot_tokens"}
        assert rows[0]["output"].startswith(rows[0]["cot"])
    fetched = list((tmp_path / "cache").glob("*/base/config.json"))
    assert len(fetched) == 1 and json.loads(fetched[0].read_text())["architectures"] == ["LlamaForCausalLM"]
    print(json.dumps(answers)[:2000])
