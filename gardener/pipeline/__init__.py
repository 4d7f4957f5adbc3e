"""The pass in plain Python: read a library, decide which patterns are stale, garden each one
(propose, merge, prune, render, verify, write) within the run's limits, record the state and
write the JSON report.

Takes a library folder, ``GardenOptions`` (or ``PruneOptions``) and a model client; gives one
``Outcome`` per pattern. Nothing here imports Prefect: ``gardener.pipeline.prefect`` is the
adapter that runs the same pass as Prefect flows and tasks (by hand, served, scheduled, on a
work pool or Dask).
"""

DEFAULT_CONCURRENCY = 8
"""Patterns in flight at once: a polite default for a hosted API's rate limit."""
