"""The test doubles and helpers the test suite and the benchmarks share, in one importable place.

Not part of the product: nothing in the other ``gardener`` packages imports it, and the wheel
leaves it out (it works from a checkout, where ``patterns/`` is). It holds

- a loopback OpenAI-compatible server (`fake_openai`, its answers and faults in
  `fake_answers`, and `responders.grounded_responder`, a valid proposal for any pattern);
- a fake GitHub REST API tied to a bare repository (`fake_github`);
- process helpers from /proc (`processes`: descendants, running, command lines);
- generated libraries of any size made from the sample (`libraries.generate`);
- the reliability scenarios (`reliability`: faults, kills, edits, hostile input, secrets);
- the benchmarks' pure measures, tested by the suite: held-out scoring (`holdout`),
  shortlist recall (`recall`), the grounding check (`grounding_check`).

Importing it needs no pytest: pytest appears only in type hints.
"""
