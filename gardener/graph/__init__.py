"""The library as one graph: health, its page, the community registry, entity resolution."""
