"""The exceptions the CLI turns into one clear line and an exit code that says what failed.

Exit codes (``tokenskip`` and every stage command; the flow's retry rule reads them):

- 0: success;
- 1: anything else (a crash, an unreachable service): may pass on a retry;
- 2: bad input (params, data, model folder, command-line options);
- 3: a check failed: the data checks before training, or the bootstrap model's held-out accuracy
  below ``base_model.min_accuracy`` (its training collapsed);
- 4: no version passed the promotion gate, only when asked (``gates.require_champion``).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes by cause."""

    OK = 0
    FAILURE = 1
    BAD_INPUT = 2
    VALIDATION_FAILED = 3
    NO_CHAMPION = 4


# codes a retry cannot fix: the same inputs fail the same way
DETERMINISTIC_CODES: frozenset[int] = frozenset(
    {ExitCode.BAD_INPUT, ExitCode.VALIDATION_FAILED, ExitCode.NO_CHAMPION}
)


class TokenSkipError(Exception):
    """Bad input or configuration: the message names the file, record and field (exit code 2)."""

    exit_code: ExitCode = ExitCode.BAD_INPUT


class ServiceError(TokenSkipError):
    """A service (tracking server, database) failed after its retries (exit code 1: transient)."""

    exit_code = ExitCode.FAILURE


class ValidationFailed(TokenSkipError):
    """A check before training failed: the data's validation suites, or the bootstrap model's
    accuracy floor (exit code 3)."""

    exit_code = ExitCode.VALIDATION_FAILED


class NoChampion(TokenSkipError):
    """No registered version passed the promotion gate, and the user asked for one (exit code 4)."""

    exit_code = ExitCode.NO_CHAMPION


def exit_code_of(exc: BaseException) -> int:
    """The exit code for ``exc``: its ``exit_code`` for a TokenSkipError, else 1."""
    return int(exc.exit_code) if isinstance(exc, TokenSkipError) else int(ExitCode.FAILURE)
