"""The bootstrap model's building blocks: tokenizer, chat template, training, save/load."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenskip.bootstrap.build import TINY_PARAMS, synthetic_problems, train_bootstrap
from tokenskip.bootstrap.tokenizer import build_tokenizer
from tokenskip.params import DEFAULT_INSTRUCTION
from tokenskip.prompts import build_prompt, format_completion


@pytest.fixture(scope="module")
def problems():
    return synthetic_problems(3, 60)


@pytest.fixture(scope="module")
def tokenizer(problems):
    texts = [DEFAULT_INSTRUCTION] + [p.question for p in problems] + [p.solution for p in problems]
    return build_tokenizer(texts, 320)


def test_tokenizer_round_trips_long_numbers_and_boxed(tokenizer) -> None:
    text = "so 98765432109876543210 + 7 = 98765432109876543217.\nThe final answer is: \\boxed{-1,234.5}"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert all(len(t.lstrip("Ġ")) <= 1 for t in tokens if any(c.isdigit() for c in t))
    assert {"\\", "{", "}"} <= set(tokens)


def test_chat_template_renders_qwen_style_prompt(tokenizer) -> None:
    prompt = build_prompt(tokenizer, "How many?", "Think.")
    assert prompt == "<|im_start|>user\nThink.\nHow many?<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert tokenizer.eos_token_id in ids


@pytest.fixture(scope="module")
def trained(problems):
    return train_bootstrap(problems, DEFAULT_INSTRUCTION, TINY_PARAMS)


def test_training_lowers_the_loss(trained) -> None:
    _, _, result = trained
    assert result.steps == TINY_PARAMS.max_steps
    assert result.final_loss < result.first_loss - 0.5
    assert result.tokens_per_s > 0


def test_save_then_load_gives_identical_logits(trained, tmp_path: Path) -> None:
    import torch

    from tokenskip.bootstrap.build import save_bootstrap
    from tokenskip.modeling import load_causal_lm

    model, tokenizer, _ = trained
    save_bootstrap(model, tokenizer, str(tmp_path))
    loaded, loaded_tokenizer = load_causal_lm(str(tmp_path), device="cpu")
    text = build_prompt(tokenizer, "Tom has 3 apples.", DEFAULT_INSTRUCTION) + format_completion("3", "3")
    batch = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    assert loaded_tokenizer(text, add_special_tokens=False)["input_ids"] == batch["input_ids"][0].tolist()
    with torch.inference_mode():
        assert torch.equal(model.eval()(**batch).logits, loaded(**batch).logits)
    assert (tmp_path / "model.safetensors").is_file()


def test_tiny_model_fixture_loads_like_any_causal_lm(tiny_model_dir: Path) -> None:
    from tokenskip.generation import generate_greedy
    from tokenskip.modeling import load_causal_lm

    model, tokenizer = load_causal_lm(str(tiny_model_dir), device="cpu")
    assert tokenizer.chat_template and tokenizer.eos_token == "<|im_end|>"
    prompts = [build_prompt(tokenizer, q, DEFAULT_INSTRUCTION) for q in ("Tom has 3 apples.", "Ann has 5.")]
    outputs, _ = generate_greedy(model, tokenizer, prompts, batch_size=2, max_new_tokens=8)
    assert len(outputs) == 2 and all(0 < o.new_tokens <= 8 for o in outputs)


def test_same_seed_and_params_give_the_same_model(problems, trained) -> None:
    import torch

    model, _, result = trained
    again, _, result_again = train_bootstrap(problems, DEFAULT_INSTRUCTION, TINY_PARAMS)
    assert result_again.losses == result.losses
    reference = model.state_dict()
    assert all(torch.equal(tensor, reference[name]) for name, tensor in again.state_dict().items())


def test_two_processes_train_like_one_on_the_same_global_batch(problems, trained) -> None:
    """num_processes=2 (spawned, gloo) takes the same steps as one process: same losses and weights
    up to float summation order (measured: 1e-6 on losses), and the same result twice."""
    import torch

    two = TINY_PARAMS.model_copy(update={"num_processes": 2})
    model, _, result = trained
    parallel, _, parallel_result = train_bootstrap(problems, DEFAULT_INSTRUCTION, two)
    assert parallel_result.steps == result.steps
    assert max(abs(a - b) for a, b in zip(result.losses, parallel_result.losses, strict=True)) < 1e-4
    reference = model.state_dict()
    for name, tensor in parallel.state_dict().items():
        torch.testing.assert_close(tensor, reference[name], rtol=1e-3, atol=1e-4)
    _, _, again = train_bootstrap(problems, DEFAULT_INSTRUCTION, two)
    assert again.losses == parallel_result.losses


def test_moving_average_leaves_training_alone_and_is_the_saved_model(problems, trained) -> None:
    import torch

    from tokenskip.bootstrap.train import ExponentialAverage

    model, _, result = trained
    averaged, _, averaged_result = train_bootstrap(
        problems, DEFAULT_INSTRUCTION, TINY_PARAMS.model_copy(update={"ema_decay": 0.8})
    )
    assert averaged_result.losses == result.losses  # the average does not feed back into training
    last = dict(model.named_parameters())
    assert any(not torch.equal(p, last[name]) for name, p in averaged.named_parameters())

    layer = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(0.0)
    ema = ExponentialAverage(layer, 0.75)
    for value in (4.0, 8.0):
        with torch.no_grad():
            layer.weight.fill_(value)
        ema.update(layer)
    ema.copy_to(layer)
    assert torch.allclose(layer.weight, torch.full((1, 2), 0.75 * 0.25 * 4.0 + 0.25 * 8.0))
