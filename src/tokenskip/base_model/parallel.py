"""Data-parallel training of the bootstrap model: ``num_processes`` CPU processes, gloo all-reduce.

On a small CPU, one thread per process trains faster than the same threads inside one process
(the bootstrap model's matrices are too small to split well across threads). No process builds a
model: each receives the parent's freshly initialised one, joins a ``torch.distributed`` process
group (gloo, on 127.0.0.1), runs :func:`~tokenskip.base_model.train.train_steps` on its rows of
each global batch and all-reduces the gradients (scaled by its share of labeled positions), so
every step equals the one-process step on the same global batch up to float summation order.
Rank 0 hands back the weights.

This is the same mechanism as fine-tuning's DDP (gloo on CPU). A home-made shared-memory sum was
measured 3.5% faster on 2 cores, too little to keep a second mechanism.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from tokenskip.base_model.train import TrainResult, summarize, train_steps
from tokenskip.core.net import free_port
from tokenskip.core.params import BaseModelParams


def all_reduce_sum(model: Any, loss: float, stop: bool) -> tuple[float, bool]:
    """Replace every gradient by its sum over the process group; return the summed loss and any stop.

    One flat gloo all-reduce per step (gradients, loss and stop flag together).
    """
    import torch
    import torch.distributed as dist

    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads] + [torch.tensor([loss, float(stop)])])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()
    return float(flat[-2]), bool(flat[-1] > 0)


def _worker(
    rank: int, world: int, port: int, model: Any, input_ids: Any, labels: Any,
    params: BaseModelParams, on_log: Callable[[int, float, float], None] | None, out: str,
) -> None:
    """One process: join the group, train its share of every global batch; rank 0 saves the result.

    ``model`` arrives in shared memory (torch pickles tensors that way), so each process trains
    a private copy: updating the shared one would apply every step once per process.
    """
    import copy

    import torch
    import torch.distributed as dist

    model = copy.deepcopy(model)
    torch.set_num_threads(max(1, params.threads // world))
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
        timeout=timedelta(minutes=10),
    )
    try:
        result = train_steps(model, input_ids, labels, params, on_log, all_reduce_sum, rank, world)
    finally:
        dist.destroy_process_group()
    if rank == 0:
        torch.save({"state": model.state_dict(), "result": dataclasses.asdict(result)}, out)


def train_data_parallel(
    model: Any,
    input_ids: Any,
    labels: Any,
    params: BaseModelParams,
    on_log: Callable[[int, float, float], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place with ``params.num_processes`` spawned processes.

    ``train_seconds`` and ``tokens_per_s`` are the parent's wall clock, process start included.
    """
    import torch
    import torch.multiprocessing as mp

    started = time.perf_counter()
    world = params.num_processes
    with tempfile.TemporaryDirectory(prefix="tokenskip-ddp-") as tmp:
        out = Path(tmp) / "rank0.pt"
        args = (world, free_port(), model, input_ids, labels, params, on_log, str(out))
        mp.start_processes(_worker, args=args, nprocs=world, start_method="spawn")
        saved = torch.load(out, weights_only=True)
    model.load_state_dict(saved["state"])
    model.eval()
    done = saved["result"]
    return summarize(done["losses"], done["tokens"], time.perf_counter() - started, done["stopped_by"])
