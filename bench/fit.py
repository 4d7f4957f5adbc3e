"""Requests cut to a context: prompt tokens, re-asks, candidates shown and the shortlist's recall.

For N patterns of a library with human relationships (chosen with ``--seed``) and each
context size, the default profile's request is cut as a run would cut it
(``gardener.propose.propose.fitted_profile``: the answer bound, then the largest cut of the
prompt that fits with as many re-asks as fit), counted the way the run counts it (the
characters / 4 estimate for a model with no offline tokenizer) and, with ``--gguf``, by the
model's own tokenizer and chat template too, which is what a llama.cpp server counts. The
shortlist shown is scored against the pattern's hidden human targets (its relationships
hidden from the ranker, as in bench/recall.py): what the cut costs before any model speaks.

    python bench/fit.py LIBRARY [--n 60] [--gguf MODEL.gguf] [--out docs/prompt-size.md]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import commit, machine, replace_section  # noqa: E402
from gardener.endpoint.settings import LLMSettings  # noqa: E402
from gardener.endpoint.tokens import ApproximateCounter, Counter, gguf_counter  # noqa: E402
from gardener.library import load as library  # noqa: E402
from gardener.propose.fit import SCALES, scaled, sized  # noqa: E402
from gardener.propose.profiles import DEFAULT  # noqa: E402
from gardener.propose.prompts import default_prompts  # noqa: E402
from gardener.propose.propose import fitted_profile, request_tokens  # noqa: E402
from gardener.shortlist.candidates import CandidateIndex  # noqa: E402
from gardener.testing.recall import hidden_targets  # noqa: E402

CONTEXTS = (4096, 8192, 16384, 131072)
MODES = ("json_object_schema", "tools")
"""The schema as a grammar (llama.cpp, vLLM, Ollama: no prompt tokens), and as prompt text."""


def q(values: Sequence[int], share: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("library", type=Path)
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gguf", type=Path, help="count with this model's own tokenizer too")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if not args.library.is_dir():
        print(f"skipped: {args.library} is not there (see ../shared/gold/README.md)")
        return 0
    patterns = library.load(args.library).patterns
    slugs = frozenset(p.slug for p in patterns)
    with_targets = sorted((p for p in patterns if hidden_targets(p, slugs)), key=lambda p: p.slug)
    chosen = random.Random(args.seed).sample(with_targets, min(args.n, len(with_targets)))
    index = CandidateIndex(patterns)
    prompts = default_prompts()
    exact: Counter | None = gguf_counter(args.gguf) if args.gguf else None
    shortlists = {p.slug: index.shortlist(p, DEFAULT.candidates, hide_relationships=True)
                  for p in chosen}
    targets = {p.slug: hidden_targets(p, slugs) for p in chosen}
    total_targets = sum(len(t) for t in targets.values())
    rows = []
    for mode in MODES:
        for context in CONTEXTS:
            base = LLMSettings(base_url="http://127.0.0.1:9/v1", api_key=None,
                               model="any-model", mode=mode)
            settings = sized(base, context)
            counted, real, shown, reasks, hits, over = [], [], [], [], 0, 0
            for p in chosen:
                fitted = fitted_profile(p, shortlists[p.slug], DEFAULT, settings,
                                        prompts=prompts)
                assert fitted is not None
                cut = fitted.profile
                counted.append(fitted.tokens)
                shown.append(cut.candidates)
                reasks.append(fitted.reasks)
                offered = shortlists[p.slug][:cut.candidates]
                hits += len(targets[p.slug] & {c.slug for c in offered})
                if exact is not None and mode != "tools":
                    n = request_tokens(p, offered, exact, prompts=prompts, limits=cut.limits,
                                       caps=cut.caps, registry=None,
                                       schema_in_prompt=mode == "tools")
                    real.append(n)
                    over += n > fitted.budget
            rows.append((mode, context, settings.max_tokens, counted, real, shown, reasks,
                         hits, over))
    head = ("| schema | context | answer | prompt tokens, estimate (median / p95 / max) | "
            + ("prompt tokens, model's tokenizer (median / max) | over budget | "
               if exact else "")
            + "re-asks (median / min) | candidates shown (median / min) | "
            "hidden targets in the shortlist shown |\n|---|---:|---:|---:|"
            + ("---:|---:|" if exact else "") + "---:|---:|---:|\n")
    lines = []
    for mode, context, answer, counted, real, shown, reasks, hits, over in rows:
        schema = "grammar" if mode != "tools" else "prompt text"
        cells = [schema, f"{context:,}", f"{answer:,}",
                 f"{statistics.median(counted):,.0f} / {q(counted, 0.95):,} / {max(counted):,}"]
        if exact:
            cells += ([f"{statistics.median(real):,.0f} / {max(real):,}", f"{over}"] if real
                      else ["-", "-"])
        cells += [f"{statistics.median(reasks):g} / {min(reasks)}",
                  f"{statistics.median(shown):g} / {min(shown)}",
                  f"{hits / total_targets:.1%} ({hits} of {total_targets})"]
        lines.append("| " + " | ".join(cells) + " |")
    curve = ["| cut | candidates | prompt tokens, estimate (median) | "
             + ("prompt tokens, model's tokenizer (median) | " if exact else "")
             + "hidden targets in the shortlist shown |",
             "|---:|---:|---:|" + ("---:|" if exact else "") + "---:|"]
    for scale in SCALES:
        cut = scaled(DEFAULT, scale)
        counted, real, hits = [], [], 0
        for p in chosen:
            offered = shortlists[p.slug][:cut.candidates]
            hits += len(targets[p.slug] & {c.slug for c in offered})
            for counter, into in ((ApproximateCounter(), counted), (exact, real)):
                if counter is not None:
                    into.append(request_tokens(p, offered, counter, prompts=prompts,
                                               limits=cut.limits, caps=cut.caps, registry=None,
                                               schema_in_prompt=False))
        curve.append(f"| {scale:g} | {cut.candidates} | {statistics.median(counted):,.0f} | "
                     + (f"{statistics.median(real):,.0f} | " if exact else "")
                     + f"{hits / total_targets:.1%} |")
    shown_command = " ".join(["python bench/fit.py", str(args.library), "--n", str(args.n),
                              "--seed", str(args.seed),
                              *(("--gguf", str(args.gguf)) if args.gguf else ())])
    heading = f"## Fitted to a context: {args.library.name}"
    body = (f"`{shown_command}`, commit {commit()}; {machine()}. {len(chosen)} patterns with "
            f"human relationships (seed {args.seed}), their relationships hidden from the "
            f"ranker; the default profile (40 candidates, 2 re-asks, 2,048 answer tokens), cut "
            "per pattern by `fitted_profile`. Budget: the context less 5%, the answer, and two "
            "answers per re-ask (the answer re-sent and its validation errors)"
            + (f"; the model's tokenizer: {exact.method}" if exact else "") + ".\n\n"
            + head + "\n".join(lines)
            + "\n\nWhat each cut costs, whatever the context (schema as a grammar, so messages "
            "only): the shortlist's recall is the ceiling of any model's link recall.\n\n"
            + "\n".join(curve))
    print(heading, body, sep="\n\n")
    if args.out:
        replace_section(args.out, heading, body, title="# Prompt size")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
