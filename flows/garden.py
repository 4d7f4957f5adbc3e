"""Deployment entry point for the gardening pass: ``prefect deploy flows/garden.py:garden``.

The flow itself lives in the package (`gardener.pipeline.garden`); this file only names it
where Prefect's deployment tooling looks for an entry point.
"""

from gardener.pipeline.prefect.flows import garden

__all__ = ["garden"]
