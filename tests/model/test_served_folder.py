"""What finetune saves serves as it is: model/ and adapter/ carry the ratio chat template, and the
served folder of `tokenskip serve` holds evaluate's greedy settings (merged model linked, adapter
merged on load for transformers serve, or kept as a LoRA module for vLLM); the pyfunc's prompts
and bad requests go through the same template."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.model.ft_samples import write_samples
from tokenskip.core.errors import TokenSkipError
from tokenskip.core.params import DEFAULT_INSTRUCTION, FinetuneParams

FAST = dict(learning_rate=3e-3, epochs=1, batch_size=8, gradient_accumulation_steps=1,
            max_length=160, save_steps=2, logging_steps=1, warmup_ratio=0.1)
QUESTION = "Tom has 3 apples. He buys 5 more. How many apples does Tom have now?"


@pytest.fixture(scope="module")
def finetuned(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA fine-tune of the tiny model (3 steps, ratios 0.5 / 0.7 / 1.0) with model/ and adapter/."""
    from tokenskip.core.hf import load_tokenizer
    from tokenskip.finetune.training import run_finetune

    root = tmp_path_factory.mktemp("served")
    samples = write_samples(load_tokenizer(str(tiny_model_dir)), root / "samples.jsonl", 24)
    params = FinetuneParams(lora_rank=4, lora_alpha=8, merge=True, **FAST)
    run_finetune(tiny_model_dir, samples, root / "tokenskip", root / "ckpt", params, instruction=DEFAULT_INSTRUCTION)
    return root / "tokenskip"


@pytest.fixture()
def adapter_only(finetuned: Path, tmp_path: Path) -> Path:
    """finetune.merge false: the adapter alone."""
    shutil.copytree(finetuned / "adapter", tmp_path / "tokenskip" / "adapter")
    return tmp_path / "tokenskip"


def source(folder: Path, kind: str, base: Path | None = None):
    from tokenskip_flows.serving import Source

    return Source(kind, folder / kind, 24, None, DEFAULT_INSTRUCTION, str(base) if base else None)


@pytest.mark.parametrize("kind", ["model", "adapter"])
def test_finetune_saves_both_folders_with_the_ratio_template(finetuned: Path, tiny_model_dir: Path, kind: str) -> None:
    from tokenskip.core.hf import load_tokenizer
    from tokenskip.core.prompts import build_prompt, is_ratio_template, render_prompt

    own = load_tokenizer(str(tiny_model_dir))
    saved = load_tokenizer(str(finetuned / kind))
    assert is_ratio_template(saved.chat_template)
    assert "0.5, 0.7 and 1.0" in saved.chat_template  # the ratios the samples held
    for ratio in (None, 0.5, 0.7, 1.0):
        expected = build_prompt(own, QUESTION, DEFAULT_INSTRUCTION, ratio)
        assert render_prompt(saved, QUESTION, ratio) == expected
        assert build_prompt(saved, QUESTION, DEFAULT_INSTRUCTION, ratio) == expected  # evaluate's prompts


def test_merged_model_is_linked_with_evaluates_greedy_settings(finetuned: Path, tmp_path: Path) -> None:
    from tokenskip_flows.serving import build_served, check_ratio_template

    served = build_served(source(finetuned, "model"), "transformers", "tokenskip", tmp_path)
    assert served.folder.name == "tokenskip" and served.lora is None
    assert (served.folder / "model.safetensors").is_symlink()
    config = json.loads((served.folder / "generation_config.json").read_text())
    assert config["do_sample"] is False and config["max_new_tokens"] == 24
    assert config["eos_token_id"] == [3] and config["repetition_penalty"] == 1.0
    assert not (finetuned / "model" / "generation_config.json").read_text().count("max_new_tokens")
    check_ratio_template(served.folder, DEFAULT_INSTRUCTION)
    with pytest.raises(TokenSkipError, match="another instruction"):
        check_ratio_template(served.folder, "Solve it.")
    again = build_served(source(finetuned, "model"), "transformers", "tokenskip", tmp_path)
    assert again.folder == served.folder  # built once


def test_adapter_is_merged_on_load_for_transformers_serve(
    adapter_only: Path, finetuned: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    import torch

    from tokenskip.core.hf import load_causal_lm, load_finetuned
    from tokenskip_flows.serving import build_served

    served = build_served(source(adapter_only, "adapter", tiny_model_dir), "transformers", "tokenskip", tmp_path)
    assert not (served.folder / "model.safetensors").is_symlink()
    assert (served.folder / "chat_template.jinja").read_text() == (
        finetuned / "adapter" / "chat_template.jinja").read_text()
    merged, tokenizer = load_causal_lm(str(served.folder), None, "cpu")
    peft, _ = load_finetuned(adapter_only, tiny_model_dir, "cpu")
    ids = tokenizer(QUESTION, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        assert torch.allclose(merged(ids).logits, peft(ids).logits, atol=1e-4)


def test_adapter_stays_a_lora_module_for_vllm(adapter_only: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    from tokenskip_flows.serving import build_served, check_ratio_template

    served = build_served(source(adapter_only, "adapter", tiny_model_dir), "vllm", "tokenskip", tmp_path)
    assert served.lora == served.folder.parent / "lora" and served.lora_rank == 8  # rank 4: vLLM's least is 8
    assert (served.lora / "adapter_model.safetensors").is_file()
    assert (served.folder / "model.safetensors").resolve() == (tiny_model_dir / "model.safetensors").resolve()
    assert not (served.folder / "tokenizer.json").is_symlink()  # the adapter's, with the ratio template
    check_ratio_template(served.folder, DEFAULT_INSTRUCTION)


def test_a_folder_saved_without_the_ratio_template_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    from tokenskip_flows.serving import build_served, check_ratio_template

    shutil.copytree(tiny_model_dir, tmp_path / "old" / "model")
    served = build_served(source(tmp_path / "old", "model"), "transformers", "tokenskip", tmp_path / "cache")
    with pytest.raises(TokenSkipError, match="takes no ratio"):
        check_ratio_template(served.folder, DEFAULT_INSTRUCTION)


def test_pyfunc_prompts_and_bad_requests_go_through_the_template(finetuned: Path) -> None:
    from tokenskip.core.hf import load_causal_lm
    from tokenskip.core.prompts import build_prompt
    from tokenskip.register.pyfunc_model import BadRequest, check_question_lengths, request_prompts

    model, tokenizer = load_causal_lm(str(finetuned / "model"), None, "cpu")
    prompts = request_prompts(tokenizer, [QUESTION], "ignored: the template's", 0.7)
    assert prompts == [build_prompt(tokenizer, QUESTION, DEFAULT_INSTRUCTION, 0.7)]
    with pytest.raises(BadRequest, match=r"^params\.ratio must be one of the trained ratios 0.5, 0.7 and 1.0"):
        request_prompts(tokenizer, [QUESTION], DEFAULT_INSTRUCTION, 0.3)
    huge = request_prompts(tokenizer, ["x " * 500_000], DEFAULT_INSTRUCTION, 1.0)
    with pytest.raises(BadRequest, match=r"^inputs\[0\]: the prompt \(1000\d+ characters\) is longer than"):
        check_question_lengths(model, tokenizer, huge)


def test_a_logged_version_downloads_to_finetunes_layout_with_its_decoding(
    finetuned: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    import mlflow
    from tokenskip.register.pyfunc_model import log_pyfunc
    from tokenskip.register.weights import download_version, finetuned_layout
    from tokenskip.tracking.store import globally

    with globally(f"sqlite:///{tmp_path / 'mlflow.db'}"):
        experiment = mlflow.create_experiment("serve", (tmp_path / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            info = log_pyfunc(finetuned, tiny_model_dir, 0.7, DEFAULT_INSTRUCTION, 24, 1, repetition_penalty=1.1)
        files = download_version(info.model_uri, tmp_path / "download")
    assert files.config["max_new_tokens"] == 24 and files.config["repetition_penalty"] == 1.1
    assert files.config["instruction"] == DEFAULT_INSTRUCTION and files.config["weights"] == {}
    layout = finetuned_layout(files.artifacts, files.config["weights"])
    assert (layout.model_dir / "model" / "chat_template.jinja").is_file()
