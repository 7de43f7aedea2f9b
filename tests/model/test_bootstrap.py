"""The bootstrap model's building blocks: tokenizer, chat template, training, save/load."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.tiny_models import TINY_PARAMS, synthetic_problems
from tokenskip.base_model.build import train_bootstrap
from tokenskip.base_model.tokenizer import build_tokenizer
from tokenskip.core.params import DEFAULT_INSTRUCTION
from tokenskip.core.prompts import build_prompt, format_completion


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


def test_an_example_longer_than_seq_len_is_one_clear_error(problems, tokenizer) -> None:
    from tokenskip.base_model.packing import pack_examples
    from tokenskip.core.errors import TokenSkipError

    with pytest.raises(TokenSkipError, match="base_model.seq_len: 64 is shorter than the longest"):
        pack_examples(problems, tokenizer, DEFAULT_INSTRUCTION, 64, seed=0)


def test_every_example_has_its_own_row_from_position_zero(problems, tokenizer) -> None:
    from tokenskip.base_model.packing import IGNORE, example_lengths, pack_examples, tokenize_examples

    ids, labels = pack_examples(problems, tokenizer, DEFAULT_INSTRUCTION, 1024, seed=0)
    examples = tokenize_examples(problems, tokenizer, DEFAULT_INSTRUCTION, seed=0)
    lengths = example_lengths(labels).tolist()
    assert ids.shape == (len(examples), max(len(e) for e, _ in examples))
    for row, (row_ids, row_labels), length in zip(examples, zip(ids.tolist(), labels.tolist(), strict=True), lengths,
                                                  strict=True):
        assert length == len(row[0]) and (row_ids[:length], row_labels[:length]) == row
        assert set(row_ids[length:]) <= {tokenizer.pad_token_id} and set(row_labels[length:]) <= {IGNORE}


def test_length_grouped_batches_cover_each_row_once_per_epoch_with_little_padding() -> None:
    import torch

    from tokenskip.base_model.train import length_grouped_batches

    lengths = torch.randint(150, 320, (400,), generator=torch.Generator().manual_seed(0))
    grouped = length_grouped_batches(lengths, 8, seed=0)
    shuffled = iter(torch.randperm(400, generator=torch.Generator().manual_seed(0)).view(50, 8))
    epoch = [next(grouped) for _ in range(50)]
    assert sorted(torch.cat(epoch).tolist()) == list(range(400))

    def padding(batches: list) -> float:
        return sum(float(lengths[b].max() * len(b) - lengths[b].sum()) for b in batches)

    assert padding(epoch) < 0.2 * padding([next(shuffled) for _ in range(50)])
    assert [b.tolist() for b in epoch] == [b.tolist() for b in
                                           (next(g) for g in [length_grouped_batches(lengths, 8, 0)] * 50)]


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

    from tokenskip.base_model.build import save_bootstrap
    from tokenskip.core.hf import load_causal_lm

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
    from tokenskip.core.decoding import generate_greedy
    from tokenskip.core.hf import load_causal_lm

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
    """num_processes=2 (spawned, gloo all-reduce) takes the same steps as one process: same losses and weights
    up to float summation order (measured: 1e-6 on losses), and the same result twice. Each global batch
    is trimmed to its longest example, so both processes' rows have one width."""
    import torch

    two = TINY_PARAMS.model_copy(update={"num_processes": 2})
    model, _, result = trained
    parallel, _, parallel_result = train_bootstrap(problems, DEFAULT_INSTRUCTION, two)
    assert parallel_result.steps == result.steps and parallel_result.tokens == result.tokens
    assert max(abs(a - b) for a, b in zip(result.losses, parallel_result.losses, strict=True)) < 1e-4
    reference = model.state_dict()
    for name, tensor in parallel.state_dict().items():
        torch.testing.assert_close(tensor, reference[name], rtol=1e-3, atol=1e-4)
    _, _, again = train_bootstrap(problems, DEFAULT_INSTRUCTION, two)
    assert again.losses == parallel_result.losses


@pytest.mark.parametrize("initializer_range", [0.02, 0.08])
def test_initial_weights_have_the_spread_base_model_initializer_range_sets(tokenizer, initializer_range) -> None:
    from tokenskip.base_model.model import build_model

    params = TINY_PARAMS.model_copy(update={"initializer_range": initializer_range, "hidden_size": 64})
    model = build_model(params, tokenizer)
    projection = model.model.layers[0].mlp.up_proj.weight
    assert float(projection.std()) == pytest.approx(initializer_range, rel=0.05)
    assert model.config.initializer_range == initializer_range  # saved with the model's config
