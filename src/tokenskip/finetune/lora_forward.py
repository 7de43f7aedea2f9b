"""LoRA layers computed with the adapter folded into the weight, where that costs less.

PEFT computes a LoRA linear layer as ``W x + s B (A x)``: per token, the base product plus two
rank-r products forward, and four more backward (A's and B's gradients and the input's through
them). Folded, the layer is ``(W + s B A) x``: one product forward, two backward (the input's
gradient and the weight's, ``dY^T x``, from which autograd gives A and B their gradients through
the small ``d_out x r x d_in`` product), plus that small product once per step. The function and
the gradients are LoRA's (up to float rounding); only the order of the products changes. Folding
pays when ``3 r (d_in + d_out) > d_in d_out``: on the bootstrap model (rank 64, layers 64 and
256 wide) it does, and a fine-tuning step takes 23% less time than with PEFT's forward (README:
Params); on real models with r << d it does not, and PEFT's forward runs unchanged.
"""

from __future__ import annotations

from types import MethodType
from typing import Any


def folding_pays(d_in: int, d_out: int, rank: int) -> bool:
    """True when the folded layer needs fewer multiply-adds per token than PEFT's (see above)."""
    return 3 * rank * (d_in + d_out) > d_in * d_out


def _foldable(module: Any) -> bool:
    """A plain LoRA linear layer: one active adapter, no dropout, no variant (DoRA), no LoRA bias."""
    import torch
    from peft.tuners.lora.layer import Linear

    if not isinstance(module, Linear) or module.merged or len(module.active_adapters) != 1:
        return False
    adapter = module.active_adapters[0]
    if adapter in module.lora_variant or module.lora_B[adapter].bias is not None:
        return False
    if not isinstance(module.lora_dropout[adapter], torch.nn.Identity):
        return False
    return folding_pays(module.in_features, module.out_features, module.r[adapter])


def _folded_forward(self: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
    """``(W + s B A) x + b``: PEFT's ``get_delta_weight`` gives ``s B A`` (with autograd)."""
    import torch.nn.functional as functional

    base = self.base_layer
    weight = base.weight + self.get_delta_weight(self.active_adapters[0]).to(base.weight.dtype)
    return functional.linear(x, weight, base.bias)


def fold_lora_layers(model: Any) -> int:
    """Compute every LoRA layer of ``model`` where folding pays with its adapter folded into the
    weight (an instance ``forward``, so saving and merging are PEFT's); returns how many."""
    folded = 0
    for module in model.modules():
        if _foldable(module):
            module.forward = MethodType(_folded_forward, module)
            folded += 1
    return folded
