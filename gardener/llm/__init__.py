"""Proposing: the candidate shortlist, prompts, response schemas, and the model client
(instructor over the openai SDK, a guarded httpx transport, fixtures, the bundled model)."""
