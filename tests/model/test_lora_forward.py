"""LoRA layers folded into their weight compute PEFT's function and gradients, only faster."""

from __future__ import annotations

import pytest
import torch

from tokenskip.finetune.lora_forward import fold_lora_layers, folding_pays


class _Projection(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(16, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def _lora(dropout: float = 0.0) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=dropout, target_modules=["proj"],
                        init_lora_weights=False)  # B not zero: A gets a gradient too
    return get_peft_model(_Projection(), config)


def _output_and_gradients(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad()
    out = model(x)
    (out ** 2).sum().backward()
    return out.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]


def test_folded_layer_gives_peft_outputs_and_adapter_gradients():
    model = _lora()
    x = torch.randn(3, 5, 16)
    expected, expected_grads = _output_and_gradients(model, x)
    assert fold_lora_layers(model) == 1
    folded, folded_grads = _output_and_gradients(model, x)
    assert torch.allclose(folded, expected, atol=1e-5)
    assert len(folded_grads) == len(expected_grads) == 2  # lora_A, lora_B
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(folded_grads, expected_grads, strict=True))
    merged = model.merge_and_unload()  # PEFT's merge is unchanged
    assert torch.allclose(merged(x), expected, atol=1e-5)


def test_layers_with_dropout_keep_peft_forward():
    assert fold_lora_layers(_lora(dropout=0.1)) == 0


@pytest.mark.parametrize(("d_in", "d_out", "rank", "pays"), [
    (64, 64, 64, True), (64, 256, 64, True),  # the bootstrap model at rank 64
    (64, 64, 8, False), (1536, 1536, 16, False), (1536, 8960, 64, False),  # r << d: PEFT's order
])
def test_folding_pays_only_when_the_rank_is_comparable_to_the_width(d_in, d_out, rank, pays):
    assert folding_pays(d_in, d_out, rank) is pays
