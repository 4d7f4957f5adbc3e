"""The proposal contract: prompt templates, the response schemas the model fills,
the grounding that refuses what the pattern's text does not support, salvage,
fitting a request to the model's context, and the call itself.

Takes a pattern and its shortlist; gives a ``Proposal``.
"""
