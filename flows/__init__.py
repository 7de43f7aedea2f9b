"""Orchestration around the stages: the Prefect flow, its deployment, the UIs, and the
``tokenskip run`` / ``deploy`` / ``ui`` commands. Importing it sets the entry points' environment
defaults (telemetry off), before Prefect or MLflow read their settings."""

from tokenskip.cli import apply_env_defaults

apply_env_defaults()
