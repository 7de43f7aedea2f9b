"""finetune trains only on validated data: ``--validation reports/validate.json`` must say ``success: true``.

DVC orders finetune after validate, but ``dvc repro -s finetune`` or ``tokenskip finetune`` by hand
skips that order; the stage itself reads validate's report and refuses to run (one ``error:`` line
naming the file) when it is missing, malformed or not a pass.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.io import read_json

MAX_NAMED_FAILURES = 3


def _failure_names(report: dict[str, Any]) -> str:
    """``; N failed expectations: a, b, c, ...`` from the report's failures (empty when none listed)."""
    failures = report.get("failures")
    if not isinstance(failures, list) or not failures:
        return ""
    names = [str(f.get("name", "?")) if isinstance(f, dict) else str(f) for f in failures]
    more = ", ..." if len(names) > MAX_NAMED_FAILURES else ""
    return f"; {len(names)} failed expectation(s): {', '.join(names[:MAX_NAMED_FAILURES])}{more}"


def require_validated(path: Path) -> None:
    """Raise one TokenSkipError naming ``path`` unless it is validate's report with ``success: true``."""
    if not path.is_file():
        raise TokenSkipError(f"{path}: validation report not found; run validate before finetune")
    report = read_json(path)  # not valid JSON: one error naming the file and line
    if not isinstance(report, dict):
        raise TokenSkipError(f"{path}: validation report is not a JSON object")
    if "success" not in report:
        raise TokenSkipError(f"{path}: field 'success' is missing (not a validate report?)")
    success = report["success"]
    if success is not True:
        error = report.get("error")
        cause = f": {' '.join(error.split())}" if isinstance(error, str) else _failure_names(report)
        raise TokenSkipError(
            f"{path}: validation did not pass (success: {json.dumps(success)}{cause}); "
            "finetune refuses to train on unvalidated data (fix the data and rerun validate)"
        )
