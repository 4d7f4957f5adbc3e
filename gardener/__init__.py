"""graph-gardener: tends the machine-written ``graph_garden`` of a pattern library."""

__version__ = "0.1.0"
