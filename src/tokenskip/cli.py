"""The ``tokenskip`` command: one sub-command per pipeline stage (see dvc.yaml).

Each stage lives in its own package (``tokenskip.<stage>.cli``) and imports only ``core/`` and
itself. A run of one command imports only that stage's package, so a stage's code is exactly
``src/tokenskip/core`` + ``src/tokenskip/<stage>`` + this entry point: what its dvc.yaml deps list.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any

import typer

from tokenskip.core.errors import TokenSkipError

# command -> (module, function), in stage-graph order; synthesize writes data/ (tracked by data.dvc)
STAGE_COMMANDS: dict[str, tuple[str, str]] = {
    "synthesize": ("tokenskip.data.cli", "synthesize"),
    "base-model": ("tokenskip.base_model.cli", "base_model"),
    "generate": ("tokenskip.generate.cli", "generate"),
    "prune": ("tokenskip.prune.cli", "prune"),
    "validate": ("tokenskip.validate.cli", "validate"),
    "finetune": ("tokenskip.finetune.cli", "finetune"),
    "evaluate": ("tokenskip.evaluate.cli", "evaluate"),
    "register": ("tokenskip.register.cli", "register"),
}


def build_app(commands: list[str] | None = None) -> typer.Typer:
    """The Typer app with ``commands`` (default: all), importing only their stage packages."""
    app = typer.Typer(
        help="TokenSkip pipeline: controllable chain-of-thought compression.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )

    @app.callback()
    def _group() -> None:
        """TokenSkip pipeline: controllable chain-of-thought compression."""

    for name in commands or list(STAGE_COMMANDS):
        module, function = STAGE_COMMANDS[name]
        app.command(name)(getattr(import_module(module), function))
    return app


def __getattr__(name: str) -> Any:
    """``tokenskip.cli.app``: the app with every command (for ``CliRunner`` and ``--help``)."""
    if name == "app":
        return build_app()
    raise AttributeError(name)


def main() -> None:
    """Entry point: run the app; bad input becomes one ``error:`` line and exit code 1."""
    argv = sys.argv[1:]
    requested = [argv[0]] if argv and argv[0] in STAGE_COMMANDS else None
    try:
        build_app(requested)()
    except TokenSkipError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":  # ``python -m tokenskip.cli`` (e.g. ``accelerate launch -m tokenskip.cli``)
    main()
