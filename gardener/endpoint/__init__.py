"""The model endpoint: an instructor client over openai's, its transport
(retries, usage, scrubbing), settings, recorded fixtures, the grammar a local
server enforces, the context it says it has, and cost (tokens, prices).

Takes messages and a response model; gives a validated answer and its usage.
"""
