"""The ``tokenskip`` command: one sub-command per DVC stage (see dvc.yaml)."""

from __future__ import annotations

import sys

import typer

from tokenskip.errors import TokenSkipError
from tokenskip.stages import base_model as base_model_stage
from tokenskip.stages import data as data_stage
from tokenskip.stages import evaluate as evaluate_stage
from tokenskip.stages import finetune as finetune_stage
from tokenskip.stages import generate as generate_stage
from tokenskip.stages import prune as prune_stage
from tokenskip.stages import register as register_stage
from tokenskip.stages import validate as validate_stage

app = typer.Typer(
    help="TokenSkip pipeline: controllable chain-of-thought compression.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """TokenSkip pipeline: controllable chain-of-thought compression."""


app.command("synthesize")(data_stage.synthesize)
app.command("base-model")(base_model_stage.base_model)
app.command("generate")(generate_stage.generate)
app.command("prune")(prune_stage.prune)
app.command("validate")(validate_stage.validate)
app.command("finetune")(finetune_stage.finetune)
app.command("evaluate")(evaluate_stage.evaluate)
app.command("register")(register_stage.register)


def main() -> None:
    """Entry point: run the app; bad input becomes one ``error:`` line and exit code 1."""
    try:
        app()
    except TokenSkipError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":  # ``python -m tokenskip.cli`` (e.g. ``accelerate launch -m tokenskip.cli``)
    main()
