"""What the finetune stage prints while it trains: one line at most every 10% of the steps.

transformers' Trainer prints its log dict every ``logging_steps`` (PrinterCallback without a
terminal, ProgressCallback's bar and dicts with one): 280 lines for the default run. Here both
are replaced by ProgressLines, which writes ``finetune: step 556/2782 (20%), loss 0.4123,
12,345 tokens/s, ETA 3m 36s`` to stderr from the main process. The full curve still goes where it
went: the report's loss_history and, inside the flow, MLflow (the Trainer's MLflow callback).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

from transformers import PrinterCallback, ProgressCallback, TrainerCallback

SHARE = 0.1  # a line each time training passes another 10% of its steps


def _write(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def duration(seconds: float) -> str:
    """``95`` -> ``1m 35s``; ``4000`` -> ``1h 6m``; under a minute: ``42s``."""
    seconds = max(int(round(seconds)), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def progress_line(step: int, max_steps: int, loss: float | None, tokens_per_s: float, eta_s: float) -> str:
    """One progress line: step, share done, latest logged loss, tokens/s and the time left."""
    loss_text = f"loss {loss:.4f}" if loss is not None else "loss -"
    return (f"finetune: step {step}/{max_steps} ({step / max(max_steps, 1):.0%}), {loss_text}, "
            f"{tokens_per_s:,.0f} tokens/s, ETA {duration(eta_s)}")


class ProgressLines(TrainerCallback):
    """A Trainer callback printing a progress line each time another ``share`` of the steps is done
    (and at the last step), in the main process only.

    ``total_tokens``: the tokens of every sample times the epochs; tokens/s counts the share of them
    the steps since this run started (or resumed) stand for.
    """

    def __init__(self, total_tokens: float, share: float = SHARE, write: Callable[[str], None] = _write,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.total_tokens = total_tokens
        self.share = share
        self.write = write
        self.clock = clock
        self.started = 0.0
        self.first_step = 0
        self.next_mark = 0
        self.loss: float | None = None
        self.pending = False  # a line due at this step, written once the step's loss is logged

    def _mark_after(self, step: int, max_steps: int) -> int:
        every = max(math.ceil(max_steps * self.share), 1)  # at most 1 / share lines, the last included
        return min((step // every + 1) * every, max_steps)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Start the clock at the first step of this run (a resumed run counts from its checkpoint)."""
        self.started = self.clock()
        self.first_step = state.global_step
        self.next_mark = self._mark_after(state.global_step, state.max_steps)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        """Keep the latest training loss the Trainer logged; write a line that waited for it."""
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])
        if self.pending:
            self.pending = False
            self._report(state)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """At the next 10% mark, write a line; on a step the Trainer logs, after its loss is known."""
        if state.global_step < self.next_mark or not state.is_world_process_zero:
            return
        self.next_mark = self._mark_after(state.global_step, state.max_steps)
        if control.should_log:  # set by the Trainer's DefaultFlowCallback, which runs first
            self.pending = True
        else:
            self._report(state)

    def _report(self, state: Any) -> None:
        step, max_steps = state.global_step, state.max_steps
        done = step - self.first_step
        elapsed = max(self.clock() - self.started, 1e-9)
        tokens_per_s = self.total_tokens * done / max(max_steps, 1) / elapsed
        eta = elapsed / max(done, 1) * (max_steps - step)
        self.write(progress_line(step, max_steps, self.loss, tokens_per_s, eta))


def attach(trainer: Any, total_tokens: float) -> ProgressLines:
    """Swap the Trainer's console printing (its log dicts, its tqdm bar) for ProgressLines."""
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    lines = ProgressLines(total_tokens)
    trainer.add_callback(lines)
    return lines
