"""The register stage's inputs: the paths it is given, and ``reports/evaluate.json`` and
``reports/finetune.json`` parsed with pydantic models (the per-ratio metrics, each ratio's paired
comparison with each reference, the loss curve). Every gap or malformed value is one error
naming the file and the field; nothing is read from MLflow before the inputs are complete.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.io import read_json
from tokenskip.core.params import Params
from tokenskip.core.prompts import ratio_key, trained_ratios
from tokenskip.register.gate import Paired, RatioResult

GATE_METRICS = ("accuracy", "mean_cot_tokens", "actual_ratio")  # numbers, always
TIMING_METRICS = ("latency_s", "throughput_tok_s")  # present; null when evaluate did not time it
METRICS = GATE_METRICS + TIMING_METRICS
PAIRED_FIELDS = ("accuracy_drop", "accuracy_drop_ci", "token_reduction", "token_reduction_ci", "mcnemar_p")
REFERENCES = ("original", "g1")


@dataclass(frozen=True)
class RegisterInputs:
    """Paths given to ``tokenskip register`` (see dvc.yaml)."""

    evaluate: Path
    finetune_report: Path
    model_dir: Path
    base_dir: Path
    reports: Path
    per_question: Path | None = None  # evaluate's per-question table; logged per ratio when given
    test_set: Path | None = None  # the test problems evaluate used (logged as the run's input)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("not_a_number", "not a number ({shown})", {"shown": repr(value)})
    return float(value)


def _figure(value: Any) -> float:
    """A paired figure: a number, or null (not measurable, e.g. a reduction against a reference
    with no CoT tokens) read as NaN, which the gate fails with its reason."""
    return math.nan if value is None else _number(value)


def _required(value: Any) -> float:
    if value is None:
        raise PydanticCustomError("missing", "missing")
    return _number(value)


def _interval(value: Any, bound: Callable[[Any], float] = _number) -> tuple[float, float] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise PydanticCustomError("interval", "not an interval [low, high] ({shown})", {"shown": repr(value)})
    low, high = (bound(x) for x in value)
    return low, high


def _paired_interval(value: Any) -> tuple[float, float]:
    """A paired CI: [low, high] with null bounds read as NaN; null as a whole: [NaN, NaN]."""
    return _interval(value, _figure) or (math.nan, math.nan)


Number = Annotated[float, BeforeValidator(_number)]
Figure = Annotated[float, BeforeValidator(_figure)]
PairedInterval = Annotated[tuple[float, float], BeforeValidator(_paired_interval)]
GateNumber = Annotated[float, BeforeValidator(_required)]
Timing = Annotated[float | None, BeforeValidator(lambda v: None if v is None else _number(v))]
Interval = Annotated[tuple[float, float] | None, BeforeValidator(_interval)]


class RatioFigures(BaseModel):
    """One ``ratios.<g>`` entry of evaluate.json, as the gate and the registry read it."""

    model_config = ConfigDict(extra="ignore")

    accuracy: GateNumber
    mean_cot_tokens: GateNumber
    actual_ratio: GateNumber
    latency_s: Timing
    throughput_tok_s: Timing
    accuracy_ci: Interval = None

    def row(self) -> dict[str, Any]:
        """The metrics as a plain row (``accuracy_ci`` as a list, only when evaluate wrote one)."""
        row: dict[str, Any] = {metric: getattr(self, metric) for metric in METRICS}
        if self.accuracy_ci is not None:
            row["accuracy_ci"] = list(self.accuracy_ci)
        return row


class PairedFigures(BaseModel):
    """One ``ratios.<g>.paired.<reference>`` entry: the paired comparison with a reference."""

    model_config = ConfigDict(extra="ignore")

    accuracy_drop: Figure
    accuracy_drop_ci: PairedInterval
    token_reduction: Figure
    token_reduction_ci: PairedInterval
    mcnemar_p: Figure

    @model_validator(mode="before")
    @classmethod
    def _complete(cls, value: Any) -> Any:
        if not isinstance(value, Mapping) or any(field not in value for field in PAIRED_FIELDS):
            raise PydanticCustomError("incomplete", "needs {fields}", {"fields": ", ".join(PAIRED_FIELDS)})
        return value


class LossPoint(BaseModel):
    """One point of finetune.json's ``loss_history``."""

    step: float
    loss: float

    @model_validator(mode="before")
    @classmethod
    def _numeric(cls, value: Any) -> Any:
        numeric = isinstance(value, Mapping) and all(
            isinstance(value.get(key), int | float) for key in ("step", "loss"))
        if not numeric:
            raise PydanticCustomError("loss_point", "needs numeric 'step' and 'loss'")
        return {"step": float(value["step"]), "loss": float(value["loss"])}


class FinetuneReport(BaseModel):
    """finetune.json as register reads it: the loss curve (its other numbers are logged as they are)."""

    model_config = ConfigDict(extra="allow")

    loss_history: list[LossPoint] | None = None


def _parse(model: type[BaseModel], value: Any, source: str, *where: str) -> Any:
    """``model`` of ``value``; the first error is one line ``<source>: <where>.<field>: <what>``."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join([*where, *(str(part) for part in error["loc"])])
        message = "missing" if error["type"] == "missing" else error["msg"]
        raise TokenSkipError(f"{source}: {field}: {message}" if field else f"{source}: {message}") from None


def _ratio_table(evaluate: Any, source: str) -> dict[float, Any]:
    """evaluate.json's ``ratios`` by value (rounded to 6 decimals)."""
    table = evaluate.get("ratios") if isinstance(evaluate, Mapping) else None
    if not isinstance(table, Mapping):
        raise TokenSkipError(f"{source}: missing object 'ratios'")
    by_value: dict[float, Any] = {}
    for key, value in table.items():
        try:
            by_value[round(float(key), 6)] = value
        except ValueError:
            raise TokenSkipError(f"{source}: ratios.{key}: not a number") from None
    return by_value


def ratio_results(evaluate: Any, ratios: list[float], source: str) -> dict[float, dict[str, Any]]:
    """Per-ratio metrics of ``reports/evaluate.json`` for g = 1.0 and ``ratios``.

    Raises TokenSkipError naming the file, the missing ratio or metric, or the bad value.
    """
    by_value = _ratio_table(evaluate, source)
    results = {}
    for ratio in trained_ratios(ratios):
        label = ratio_key(ratio)
        entry = by_value.get(round(ratio, 6))
        if not isinstance(entry, Mapping):
            raise TokenSkipError(f"{source}: ratios.{label}: missing (evaluate.ratios lists it)")
        results[ratio] = _parse(RatioFigures, entry, source, "ratios", label).row()
    return results


def paired_results(evaluate: Any, ratios: list[float], source: str) -> dict[float, dict[str, Paired]]:
    """Per ratio, its paired comparison with each reference evaluate measured (``ratios.<g>.paired``).

    Raises TokenSkipError naming the file and the missing or malformed field.
    """
    by_value = _ratio_table(evaluate, source)
    results: dict[float, dict[str, Paired]] = {}
    for ratio in trained_ratios(ratios):
        label = ratio_key(ratio)
        paired = by_value[round(ratio, 6)].get("paired")
        if not isinstance(paired, Mapping):
            raise TokenSkipError(f"{source}: ratios.{label}.paired: missing (re-run evaluate)")
        results[ratio] = {}
        for ref in (r for r in REFERENCES if r in paired):
            figures = _parse(PairedFigures, paired[ref], source, "ratios", label, "paired", ref)
            results[ratio][ref] = Paired(**figures.model_dump())
    return results


def loss_curve(finetune: Any, source: Path) -> list[tuple[int, float]]:
    """(step, loss) points of finetune.json's ``loss_history``; a malformed point is one error."""
    report = _parse(FinetuneReport, finetune, str(source))
    return [(int(point.step), float(point.loss)) for point in report.loss_history or []]


def as_result(ratio: float, row: Mapping[str, float]) -> RatioResult:
    """The gate's view of one ratio."""
    return RatioResult(ratio, row["accuracy"], row["mean_cot_tokens"], row["actual_ratio"])


def read_inputs(inputs: RegisterInputs, params: Params) -> tuple[dict, dict, dict[float, dict], dict]:
    """(evaluate.json, finetune.json, per-ratio metrics, per-ratio paired comparison with
    ``gates.reference``); any gap is one clear error."""
    from tokenskip.core.hf import finetuned_kind
    from tokenskip.core.manifest import check_base_model

    evaluate = read_json(inputs.evaluate)
    finetune = read_json(inputs.finetune_report)
    if not isinstance(finetune, dict):
        raise TokenSkipError(f"{inputs.finetune_report}: not a JSON object")
    loss_curve(finetune, inputs.finetune_report)
    rows = ratio_results(evaluate, params.evaluate.ratios, str(inputs.evaluate))
    paired = paired_results(evaluate, params.evaluate.ratios, str(inputs.evaluate))
    reference = params.gates.reference
    missing = [ratio_key(r) for r, by_ref in paired.items() if reference not in by_ref]
    if missing:
        raise TokenSkipError(
            f"{inputs.evaluate}: ratios.{missing[0]}.paired.{reference}: missing; gates.reference="
            f"{reference} needs it (the original model is measured when evaluate.baselines is true)"
        )
    finetuned_kind(inputs.model_dir)
    check_base_model(inputs.model_dir, inputs.base_dir)  # the base model it was fine-tuned on, by content
    return evaluate, finetune, rows, paired
