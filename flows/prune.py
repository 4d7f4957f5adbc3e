"""Deployment entry point for the pruning pass: ``prefect deploy flows/prune.py:prune``.

The flow itself lives in the package (`gardener.pipeline.prune`); this file only names it
where Prefect's deployment tooling looks for an entry point.
"""

from gardener.pipeline.prefect.flows import prune

__all__ = ["prune"]
