"""TokenSkip pipeline: controllable chain-of-thought compression for reasoning LLMs."""

__version__ = "0.1.0"
