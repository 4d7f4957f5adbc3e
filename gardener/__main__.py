"""``python -m gardener``: the same command line as the ``gardener`` script."""

from gardener.cli.main import app

app()
