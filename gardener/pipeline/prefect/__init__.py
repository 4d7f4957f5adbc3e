"""The Prefect adapter around the plain pass: flows, tasks, deployments and the
API server's settings. Nothing below ``gardener.pipeline`` imports Prefect.
"""
