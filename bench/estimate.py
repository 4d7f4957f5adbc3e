"""``gardener run --estimate`` against what the pass then reports, on the bundled model.

On a copy of patterns/, in fresh processes with no endpoint configured (so the bundled
SmolLM2-135M-Instruct is what a pass would use): first ``--estimate`` (nothing sent, no
server started), then the real pass, which starts the model's llama.cpp server and reports
the prompt tokens the server counted. Writes the per-pattern comparison, and what the same
library would cost on hosted models (estimated only: nothing is sent), as its section of
docs/cost.md.

    python bench/estimate.py [--out docs/cost.md]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, commit, gardener_command, machine, replace_section

DOC = ROOT / "docs" / "cost.md"
HEADING = "## Measured: the estimate against the bundled model's own count"
TITLE = "# What a pass costs"
ENDPOINT_VARIABLES = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "GARDENER_MODEL", "GARDENER_MODE",
                      "GARDENER_LOCAL_MODEL")
HOSTED = ("gpt-4.1-mini", "gpt-4o-mini", "gpt-5-mini", "gpt-4.1")
"""Models priced for the same library by ``--estimate`` alone (a key is set, none is used)."""


def gardener(command: list[str], args: Sequence[str], env: Mapping[str, str],
             report: Path) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    done = subprocess.run([*command, "run", *args, "--report", str(report)], env=dict(env),
                          capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if not report.is_file():
        raise SystemExit(f"gardener {' '.join(args)} wrote no report (exit "
                         f"{done.returncode}):\n{done.stdout}\n{done.stderr}")
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return data, wall


def section(estimate: dict[str, Any], passed: dict[str, Any], hosted: list[dict[str, Any]],
            walls: tuple[float, float], command: list[str]) -> str:
    real = {p["slug"]: p for p in passed["patterns"]}
    rows = []
    est_sum = real_sum = 0
    worst = 0.0
    for p in estimate["patterns"]:
        got = real.get(p["slug"], {})
        reported = got.get("usage", {}).get("prompt_tokens", 0)
        requests = got.get("requests", 0)
        if requests == 1:
            est_sum += p["prompt_tokens"]
            real_sum += reported
            error = (p["prompt_tokens"] - reported) / reported * 100
            worst = max(worst, abs(error))
            shown = f"{error:+.1f} %"
        else:
            shown = f"not compared ({requests} requests)"
        rows.append(f"| {p['slug']} | {p['prompt_tokens']:,} | {reported:,} | {shown} |")
    total = (est_sum - real_sum) / real_sum * 100 if real_sum else float("nan")
    shown_command = " ".join(command)
    lines = [
        f"Machine: {machine()}; commit {commit()}; `python bench/estimate.py` "
        f"(`{shown_command} run COPY_OF_patterns --estimate`, then the same without "
        "`--estimate`, no endpoint configured).",
        "",
        f"The estimate took {walls[0]:.1f} s (counted with {estimate['counted_with']}); the "
        f"pass {walls[1]:.1f} s, start-up of Prefect and the model server included.",
        "",
        "| pattern | estimated prompt tokens | reported by llama.cpp | difference |",
        "|---|---:|---:|---:|",
        *rows,
        f"| **all compared** | **{est_sum:,}** | **{real_sum:,}** | **{total:+.1f} %** |",
        "",
        f"Largest difference on one pattern: {worst:.1f} %. Completion tokens: at most "
        f"{estimate['completion_tokens_at_most']:,} estimated ({estimate['max_tokens_per_call']}"
        f" a call), {passed['totals']['usage'].get('completion_tokens', 0):,} reported.",
        "",
        "The same library on hosted models, from `--estimate` alone (the default profile: "
        "40 candidates, longer quotes, 2,048 answer tokens; nothing sent):",
        "",
        "| model | calls | prompt tokens | counted with | price for the prompts "
        "| at most, answers at max_tokens |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for h in hosted:
        lines.append(f"| {h['model']} | {h['calls']} | {h['prompt_tokens']:,} "
                     f"| {h['counted_with']} | ${h['usd_prompt']:.4f} | ${h['usd_at_most']:.4f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOC)
    args = parser.parse_args(argv)
    command = gardener_command()
    with tempfile.TemporaryDirectory(prefix="bench-estimate-") as tmp:
        folder = Path(tmp)
        library = folder / "library"
        shutil.copytree(ROOT / "patterns", library)
        env = {k: v for k, v in os.environ.items() if k not in ENDPOINT_VARIABLES}
        env["PREFECT_HOME"] = str(folder / "prefect-home")
        # Prefect's own setting: on a busy machine its temporary server takes more than the
        # default 20 s to start, and the pass would stop before asking anything.
        env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
        estimate, est_wall = gardener(command, [str(library), "--estimate"], env,
                                      folder / "estimate.json")
        passed, pass_wall = gardener(command, [str(library)], env, folder / "report.json")
        hosted = []
        for model in HOSTED:
            fresh = folder / f"fresh-{model}"
            shutil.copytree(ROOT / "patterns", fresh)
            priced = {**env, "OPENAI_API_KEY": "sk-not-used", "GARDENER_MODEL": model}
            data, _ = gardener(command, [str(fresh), "--estimate"], priced,
                               folder / f"{model}.json")
            hosted.append(data)
    body = section(estimate, passed, hosted, (est_wall, pass_wall), command)
    print(body)
    replace_section(args.out, HEADING, body, title=TITLE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
