"""What every decoding engine of ``generate.backend`` takes and returns (see ``engines``)."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from tokenskip.core.decoding import Generation
from tokenskip.generate.checkpoint import Checkpoint


class Decoded(NamedTuple):
    """What every engine returns."""

    generations: list[Generation]
    seconds: float
    resumed: int
    info: dict[str, Any]


class Engine(Protocol):
    """A decoding engine: its tokenizer, its identity for the checkpoint, and ``decode``."""

    tokenizer: Any

    def identity(self) -> dict[str, Any]:
        """What determines the outputs besides the prompts (model files, engine)."""
        ...

    def decode(self, prompts: list[str], checkpoint: Checkpoint) -> Decoded:
        """Greedy-decode ``prompts``, resuming from and appending to ``checkpoint``."""
        ...
