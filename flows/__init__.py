"""Prefect glue: flows, tasks, deployments and artifacts over the plain-Python engine.

The only package that imports Prefect. Importing it first sets the defaults every Prefect
process here must run with (no telemetry; our loggers shown in the UI), before Prefect
reads its settings.
"""

from flows.prefect_env import apply_defaults

apply_defaults()
