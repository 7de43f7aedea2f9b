"""Great Expectations validation of the generated, pruned and training data (validate stage)."""

from tokenskip.validate.frames import Inputs, build_frames, load_inputs
from tokenskip.validate.runner import format_failure, validate_frames
from tokenskip.validate.suites import Thresholds, build_suites

__all__ = [
    "Inputs",
    "Thresholds",
    "build_frames",
    "build_suites",
    "format_failure",
    "load_inputs",
    "validate_frames",
]
