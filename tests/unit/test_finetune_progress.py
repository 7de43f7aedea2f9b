"""finetune's progress lines: at most one per 10% of the steps, with step, loss, tokens/s and ETA."""

from __future__ import annotations

from types import SimpleNamespace

from tokenskip.finetune.progress import ProgressLines, duration, progress_line


class Run:
    """The Trainer's side, one second a step: on_step_end (after DefaultFlowCallback set should_log),
    then on_log on logging steps."""

    def __init__(self, max_steps: int, logging_steps: int, total_tokens: float = 2782 * 100, start: int = 0,
                 main: bool = True) -> None:
        self.lines: list[str] = []
        self.state = SimpleNamespace(global_step=start, max_steps=max_steps, is_world_process_zero=main)
        self.logging_steps = logging_steps
        self.callback = ProgressLines(total_tokens, write=self.lines.append,
                                      clock=lambda: float(self.state.global_step))

    def train(self) -> list[str]:
        self.callback.on_train_begin(None, self.state, None)
        for step in range(self.state.global_step + 1, self.state.max_steps + 1):
            self.state.global_step = step
            control = SimpleNamespace(should_log=step % self.logging_steps == 0)
            self.callback.on_step_end(None, self.state, control)
            if control.should_log:
                self.callback.on_log(None, self.state, control, logs={"loss": 1000.0 / step, "grad_norm": 1.0})
        return self.lines


def test_a_line_per_tenth_of_the_steps_not_a_dict_per_logging_step() -> None:
    lines = Run(max_steps=2782, logging_steps=10).train()
    assert len(lines) == 10  # 279, 558, ..., 2511 and the last step (the Trainer: 278 dicts)
    assert lines[0].startswith("finetune: step 279/2782 (10%), loss ")
    assert lines[-1].startswith("finetune: step 2782/2782 (100%), ") and lines[-1].endswith("ETA 0s")
    assert all("tokens/s" in line and "ETA" in line for line in lines)


def test_a_line_on_a_logging_step_waits_for_that_steps_loss() -> None:
    lines = Run(max_steps=100, logging_steps=10, total_tokens=100 * 50).train()
    assert lines[0] == progress_line(10, 100, 100.0, 50.0, 90.0)  # step 10's own loss, 1000 / 10
    assert len(lines) == 10


def test_a_resumed_run_counts_from_its_checkpoint_and_short_runs_still_report() -> None:
    lines = Run(max_steps=100, logging_steps=10, start=60).train()
    assert [line.split(",")[0] for line in lines] == [f"finetune: step {s}/100 (70%)".replace("70", str(s))
                                                      for s in (70, 80, 90, 100)]
    short = Run(max_steps=3, logging_steps=10).train()
    assert [line.split(" (")[0] for line in short] == ["finetune: step 1/3", "finetune: step 2/3",
                                                       "finetune: step 3/3"]
    assert "loss -" in short[0]


def test_only_the_main_process_writes_and_durations_read_well() -> None:
    assert Run(max_steps=10, logging_steps=1, main=False).train() == []
    assert [duration(s) for s in (0, 42, 95, 4000)] == ["0s", "42s", "1m 35s", "1h 6m"]
