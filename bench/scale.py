"""A scale benchmark: every command a user runs, over a library of about 3,600 patterns.

The library is built in a temporary folder (or ``--out DIR``) from the real files of
``../shared/corpus`` (``commons-os-patterns/``, flat) and ``../shared/gold``
(``commons-engineering/``, nested; the corpus's own ``commons-engineering/`` files are a
subset of it): all real files first, as they are (the corpus's two files whose YAML does not
parse included: a real library has them), then copies until ``--patterns`` files. A copy of
``x.md`` is ``x-copy-K.md`` beside it, with every front-matter value that names the slug or
``pat_`` id of a file copied in the same round suffixed ``-copy-K`` (``slug:``, ``id:`` and the
references to those files, the helpers of ``bench/prune.py``); references to files not copied
in that round keep pointing at the originals, which exist. So the library resolves, dangles
and agrees with its human relationships as a real one does. It is made a git repository (one
commit on ``main``, pushed to a local bare ``origin``) so ``gardener review`` runs as it does
in a checkout.

Each command runs as a user runs it, as its own process (``gardener ...``), under
``/usr/bin/time`` (wall, user + system CPU, the largest process's peak RSS), while a sampler
sums the RSS of the whole process tree (the gardener and Prefect's temporary server) every
0.2 s. The model is a loopback OpenAI-compatible stand-in in this process that answers every
``/v1/chat/completions`` at once with a small valid proposal derived from the request's schema
(one link to the first candidate, quoting the pattern's summary).

    .venv/bin/python bench/scale.py                         # 3,600 patterns, table printed
    .venv/bin/python bench/scale.py --write-docs            # and docs/benchmarks.md updated
    .venv/bin/python bench/scale.py --patterns 400 --keep --out /tmp/scale
    .venv/bin/python bench/scale.py --profile /tmp/scale-profile   # py-spy + tracemalloc too

``--profile DIR`` also profiles ``check``, ``run --estimate`` and ``run --max-patterns 10``:
CPU with py-spy (``pip install py-spy``; every thread and the server process; cumulative
seconds per function from its collapsed stacks) and memory with tracemalloc (snapshots after
the library is read, before the first pattern is submitted, and at exit).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from bench.common import CORPUS, ROOT, commit, gardener_command, machine, replace_section
from bench.prune import _edits, _front_matter, _names, _suffixed
from gardener.library.document import ReadError, decode

GOLD = ROOT.parent / "shared" / "gold"
DOC = ROOT / "docs" / "benchmarks.md"
HEADING = "## Scale: a 3,600-pattern library"
MODEL = "bench-scale-model"
TIME = Path("/usr/bin/time")
SAMPLE_S = 0.2


# --- the library ------------------------------------------------------------------------------

@dataclass
class Built:
    files: int = 0
    real: int = 0
    copies: int = 0
    rounds: int = 0
    unparsed: list[str] = field(default_factory=list)
    """Files whose front matter does not parse (copied as they are, never duplicated)."""


def real_files(corpus: Path, gold: Path) -> list[tuple[Path, Path]]:
    """(source, path in the library) of every real pattern file, the gold library's first."""
    out: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    for base, sub in ((gold, "commons-engineering"), (corpus, "commons-engineering"),
                      (corpus, "commons-os-patterns")):
        folder = base / sub
        if not folder.is_dir():
            continue
        for p in sorted(folder.rglob("*.md")):
            rel = p.relative_to(base)
            if rel not in seen:  # the corpus's commons-engineering files are gold's
                seen.add(rel)
                out.append((p, rel))
    return out


def _spread(items: Sequence[Any], n: int) -> list[Any]:
    """``n`` of ``items`` spread evenly over the sequence (all of them when n >= len)."""
    if n >= len(items):
        return list(items)
    return [items[(j * len(items)) // n] for j in range(n)]


def build_library(dest: Path, n: int, corpus: Path = CORPUS, gold: Path = GOLD) -> Built:
    """Write about ``n`` pattern files under ``dest``: real ones, then consistent copies."""
    sources = real_files(corpus, gold)
    if not sources:
        raise SystemExit(f"no pattern files under {corpus} or {gold}")
    chosen = _spread(sources, n)
    built = Built()
    texts: dict[Path, str] = {}
    for src, rel in chosen:
        raw = src.read_bytes()
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(raw)
        built.real += 1
        try:
            text = decode(raw, src)
        except ReadError:
            built.unparsed.append(str(rel))
            continue
        if isinstance(_front_matter(text), dict):
            texts[rel] = text
        else:
            built.unparsed.append(str(rel))
    copyable = sorted(texts)
    need = n - built.real
    k = 1
    while need > 0 and copyable:
        k += 1
        take = _spread(copyable, need)
        suffix = f"-copy-{k}"
        names = _names({rel: texts[rel] for rel in take})
        for rel in take:
            text = texts[rel]
            try:
                edits = _edits(text, names)
            except ValueError:
                edits = []
            target = dest / rel.with_name(rel.stem + suffix + rel.suffix)
            target.write_text(_suffixed(text, edits, suffix), encoding="utf-8")
            built.copies += 1
        need -= len(take)
        built.rounds += 1
    built.files = built.real + built.copies
    return built


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=Bench", "-c", "user.email=bench@invalid",
                           "-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null",
                           *args], cwd=cwd, text=True, capture_output=True, check=True)
    return done.stdout


def make_repository(lib: Path, remote: Path) -> None:
    """One commit of everything on ``main``, pushed to a bare ``origin`` beside it."""
    git(lib, "init", "-q", "-b", "main")
    git(lib, "add", "-A")
    git(lib, "commit", "-q", "-m", "The pattern library")
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(lib, "remote", "add", "origin", str(remote))
    git(lib, "push", "-q", "origin", "main")


# --- the model stand-in -----------------------------------------------------------------------

_SUMMARY = re.compile(r"^summary: (.+)$", re.MULTILINE)
_EMBEDDED = re.compile(r"```json\s*(\{.*?\})\s*```", re.DOTALL)


def request_schema(body: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON schema of the answer wherever the structured-output mode put it."""
    tools = body.get("tools")
    if tools:
        return dict(tools[0].get("function", {}).get("parameters", {}))
    fmt = body.get("response_format") or {}
    if isinstance(fmt.get("json_schema"), dict):
        return dict(fmt["json_schema"].get("schema", {}))
    if isinstance(fmt.get("schema"), dict):
        return dict(fmt["schema"])
    for message in body.get("messages", []):
        content = message.get("content")
        found = _EMBEDDED.search(content) if isinstance(content, str) else None
        if found:
            with contextlib.suppress(json.JSONDecodeError):
                return dict(json.loads(found.group(1)))
    return {}


def minimal(schema: Mapping[str, Any], defs: Mapping[str, Any], depth: int = 0) -> Any:
    """The smallest value ``schema`` accepts: required keys only, shortest lists."""
    if depth > 12:
        return None
    if "$ref" in schema:
        return minimal(defs.get(str(schema["$ref"]).rsplit("/", 1)[-1], {}), defs, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return minimal(options[0], defs, depth + 1)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: minimal(props.get(k, {}), defs, depth + 1)
                for k in schema.get("required", list(props))}
    if kind == "array":
        return [minimal(schema.get("items", {}), defs, depth + 1)
                for _ in range(int(schema.get("minItems", 0)))]
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("minimum", 0))
    if kind == "boolean":
        return False
    return "x" * int(schema.get("minLength", 1))


def answer(body: Mapping[str, Any]) -> dict[str, Any]:
    """A valid proposal for the request: the schema's minimum, one grounded link and a
    vitality reasoning in prose."""
    schema = request_schema(body)
    defs = schema.get("$defs", {})
    value = minimal(schema, defs)
    value = value if isinstance(value, dict) else {}
    props = schema.get("properties", {})
    text = "\n".join(str(m.get("content", "")) for m in body.get("messages", [])
                     if m.get("role") == "user")
    if "vitality_reasoning" in props:
        value["vitality_reasoning"] = ("The Vitality section of this pattern describes how the "
                                       "practice is kept alive and where it decays when "
                                       "neglected by the people who use it.")
    link = defs.get("LinkDraft", {})
    targets = link.get("properties", {}).get("target", {}).get("enum", [])
    found = _SUMMARY.search(text)
    summary = found.group(1).removesuffix(" […]").strip().strip("'\"") if found else ""
    quote = ""
    for word in summary.split()[:8]:
        if len(quote) + len(word) + 1 > 70:
            break
        quote = f"{quote} {word}".strip()
    if "inferred_links" in props and targets and len(quote) >= 12:
        item = minimal(link, defs)
        item.update(target=targets[0], confidence_pct=80, evidence=quote,
                    reason="Both patterns address related practice in overlapping situations")
        value["inferred_links"] = [item]
    return value


class StandIn:
    """An OpenAI-compatible chat-completions endpoint on 127.0.0.1, answering at once."""

    def __init__(self) -> None:
        self.requests = 0
        self.first: float | None = None
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, payload: Mapping[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(404, {"error": {"message": "not here", "type": "not_found"}})

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(size)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": "not here", "type": "not_found"}})
                    return
                body = json.loads(raw)
                with outer.lock:
                    outer.requests += 1
                    if outer.first is None:
                        outer.first = time.monotonic()
                content = json.dumps(answer(body))
                message: dict[str, Any] = {"role": "assistant", "content": content}
                tools = body.get("tools")
                if tools:
                    name = tools[0].get("function", {}).get("name", "answer")
                    message = {"role": "assistant", "content": None, "tool_calls": [
                        {"id": "call_1", "type": "function",
                         "function": {"name": name, "arguments": content}}]}
                prompt = len(raw) // 4
                completion = len(content) // 4
                self._send(200, {
                    "id": "chatcmpl-bench", "object": "chat.completion",
                    "created": int(time.time()), "model": body.get("model", MODEL),
                    "choices": [{"index": 0, "message": message,
                                 "finish_reason": "tool_calls" if tools else "stop"}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                              "total_tokens": prompt + completion}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- measuring one command --------------------------------------------------------------------

@dataclass
class Measured:
    label: str
    args: list[str]
    wall_s: float = 0.0
    cpu_s: float = 0.0
    tree_mb: float = 0.0
    """Peak of the summed RSS of the command's process tree (sampled)."""
    largest_mb: float = 0.0
    """Peak RSS of its largest single process (``/usr/bin/time``'s maximum resident size)."""
    rc: int = 0
    output: str = ""
    first_request_s: float | None = None
    requests: int = 0
    timed_out: bool = False


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _processes() -> dict[int, tuple[int, float, int]]:
    """pid -> (parent pid, user + system CPU s, RSS bytes) for every process now."""
    out: dict[int, tuple[int, float, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        # fields[0] is field 3 (state): ppid 4, utime 14, stime 15, rss 24
        out[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK,
                                int(fields[21]) * _PAGE)
    return out


class TreeSampler:
    """Sums the RSS of a process and its descendants; keeps each one's last CPU seen."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak = 0
        self.cpu: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            procs = _processes()
            tree = {self.root}
            grew = True
            while grew:
                grew = False
                for pid, (ppid, _, _) in procs.items():
                    if ppid in tree and pid not in tree:
                        tree.add(pid)
                        grew = True
            members = [procs[p] for p in tree if p in procs]
            self.peak = max(self.peak, sum(rss for _, _, rss in members))
            for pid in tree:
                if pid in procs and pid != self.root:
                    self.cpu[pid] = procs[pid][1]
            self.stop.wait(SAMPLE_S)

    def close(self) -> tuple[float, float]:
        self.stop.set()
        self.thread.join()
        return self.peak / 2**20, sum(self.cpu.values())


def child_env(base: Mapping[str, str], state: Path, stand_in: StandIn | None) -> dict[str, str]:
    """The environment a user's shell would give the command: no GitHub or model secrets of
    this machine, the gardener's state in ``state``, the model at the stand-in."""
    env = {k: v for k, v in base.items()
           if not k.startswith(("OPENAI_", "GARDENER_", "GITHUB_", "GH_", "PREFECT_"))}
    env.update(XDG_STATE_HOME=str(state), COLUMNS="200", NO_COLOR="1", TERM="dumb")
    if stand_in is not None:
        env.update(OPENAI_BASE_URL=stand_in.url, OPENAI_API_KEY="sk-bench-scale",
                   GARDENER_MODEL=MODEL)
    return env


def measure(label: str, args: Sequence[str], env: Mapping[str, str], timeout: float,
            stand_in: StandIn | None = None, cwd: Path | None = None) -> Measured:
    """Run ``gardener ARGS`` once as its own process; wall, CPU and memory."""
    m = Measured(label, list(args))
    with tempfile.TemporaryDirectory(prefix="scale-time-") as tmp:
        timing = Path(tmp) / "time.txt"
        wrapper = [str(TIME), "-f", "%e %U %S %M", "-o", str(timing)] if TIME.exists() else []
        if stand_in is not None:
            with stand_in.lock:
                stand_in.first, before = None, stand_in.requests
        start = time.monotonic()
        proc = subprocess.Popen([*wrapper, *gardener_command(), *args], env=dict(env),
                                cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        sampler = TreeSampler(proc.pid)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            m.timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        m.wall_s = time.monotonic() - start
        m.tree_mb, sampled_cpu = sampler.close()
        m.rc = proc.returncode
        m.output = out.decode(errors="replace")
        m.cpu_s = sampled_cpu
        if timing.exists():
            parts = timing.read_text().split()
            with contextlib.suppress(ValueError, IndexError):
                m.wall_s = float(parts[-4])
                m.cpu_s = max(sampled_cpu, float(parts[-3]) + float(parts[-2]))
                m.largest_mb = int(parts[-1]) / 1024
        if stand_in is not None:
            with stand_in.lock:
                m.requests = stand_in.requests - before
                if stand_in.first is not None:
                    m.first_request_s = stand_in.first - start
    m.largest_mb = m.largest_mb or m.tree_mb
    status = "timed out" if m.timed_out else f"exit {m.rc}"
    print(f"  {label}: {m.wall_s:.1f} s wall, {m.cpu_s:.1f} s CPU, {m.tree_mb:.0f} MB tree, "
          f"{status}", file=sys.stderr, flush=True)
    return m


# --- picking links for reject and promote ----------------------------------------------------

def written_links(lib: Path) -> list[tuple[str, str]]:
    """(slug, target) of inferred links in the files the runs changed, in file order."""
    changed = git(lib, "diff", "--name-only").split()
    out: list[tuple[str, str]] = []
    for name in changed:
        if not name.endswith(".md"):
            continue
        data = _front_matter((lib / name).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            continue
        garden = data.get("graph_garden") or {}
        links = garden.get("inferred_links") if isinstance(garden, dict) else None
        for link in links or []:
            if isinstance(link, dict) and isinstance(link.get("target"), str):
                out.append((str(data.get("slug") or Path(name).stem), link["target"]))
                break
    return out


# --- the table --------------------------------------------------------------------------------

def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def table(rows: list[Measured], startup: Mapping[str, Measured], patterns: int,
          body_chars: int | None, names: Mapping[str, str]) -> str:
    """The Markdown table of every measured command."""
    by = {m.label: m for m in rows}
    lines = ["| command | wall s | CPU s | peak MB, process tree | largest process MB | "
             "CPU ms per pattern beyond start-up | exit | notes |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for m in rows:
        per: float | None = None
        notes: list[str] = []
        base = startup.get(m.label)
        if base is not None:
            per = (m.cpu_s - base.cpu_s) * 1000 / max(patterns - 1, 1)
            notes.append(f"start-up (1-pattern library): {base.wall_s:.1f} s wall, "
                         f"{base.cpu_s:.1f} s CPU; per library pattern")
        if m.label == "run --max-patterns 60" and "run --max-patterns 10" in by:
            per = (m.cpu_s - by["run --max-patterns 10"].cpu_s) * 1000 / 50
            notes.append("per gardened pattern: (this - run 10) / 50")
        if m.first_request_s is not None:
            notes.append(f"first model request at {m.first_request_s:.1f} s")
        if m.requests:
            notes.append(f"{m.requests} model requests")
        if m.label.startswith("review") and body_chars is not None:
            notes.append(f"pull-request body {body_chars:,} characters")
        if m.timed_out:
            notes.append("TIMED OUT")
        shown = " ".join(m.args)
        for path, name in names.items():
            shown = shown.replace(path, name)
        lines.append(f"| `gardener {shown}` | {m.wall_s:.1f} | {m.cpu_s:.1f} | "
                     f"{m.tree_mb:.0f} | {m.largest_mb:.0f} | {_ms(per)} | {m.rc} | "
                     f"{'; '.join(notes)} |")
    return "\n".join(lines)


# --- profiles ---------------------------------------------------------------------------------

TRACE = r'''
import sys, tracemalloc, json
out = sys.argv[1]
args = sys.argv[2:]
tracemalloc.start(3)
snaps = {}
def snap(tag):
    if tag not in snaps:
        snaps[tag] = (tracemalloc.take_snapshot(), tracemalloc.get_traced_memory())
import gardener.library.load as L
_load = L.load
def load(*a, **k):
    r = _load(*a, **k); snap("after library.load"); return r
L.load = load
import gardener.pipeline.garden as G
_rt = G.decide
def rt(*a, **k):
    snap("before the first pattern is decided"); return _rt(*a, **k)
G.decide = rt
from gardener.cli.main import app
sys.argv = ["gardener", *args]
code = 0
try:
    app()
except SystemExit as e:
    code = e.code
snap("at exit")
def where(tb):
    frames = list(tb)
    inner = frames[-1]
    own = next((f for f in reversed(frames) if "/gardener/" in f.filename
                and "site-packages" not in f.filename), None)
    def short(f):
        name = f.filename
        for cut in ("site-packages/", "/main/"):
            if cut in name:
                name = name.split(cut, 1)[1]
        return f"{name}:{f.lineno}"
    return short(inner), short(own) if own else ""
report = {}
for tag, (s, (cur, peak)) in snaps.items():
    stats = s.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)]).statistics(
        "traceback")
    grouped = {}
    for st in stats:
        key = where(st.traceback)
        grouped[key] = grouped.get(key, 0) + st.size
    top = sorted(grouped.items(), key=lambda kv: -kv[1])[:15]
    report[tag] = {"current_mb": cur / 2**20, "peak_mb": peak / 2**20,
                   "top": [[a, b, size / 2**20] for (a, b), size in top]}
with open(out, "w") as fh:
    json.dump({"exit": code, "snapshots": report}, fh, indent=1)
'''


def _module(path: str) -> str:
    for cut in ("site-packages/", "/main/", "lib/python3.11/"):
        if cut in path:
            path = path.split(cut, 1)[1]
            break
    return path.removesuffix(".py").replace("/", ".")


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*)\)$")


def collapse(raw: Path, rate: int) -> tuple[list[tuple[str, float]], list[tuple[str, float]],
                                            float]:
    """Cumulative and self seconds per ``module:function`` from py-spy's raw output."""
    cumulative: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        names: list[str] = []
        for frame in stack.split(";"):
            found = _FRAME.match(frame)
            if found and found.group("file").endswith(".py"):
                names.append(f"{_module(found.group('file'))}:{found.group('func')}")
        for name in set(names):
            cumulative[name] += count
        if names:
            own[names[-1]] += count
    def secs(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, v / rate) for k, v in c.most_common(25)]
    return secs(cumulative), secs(own), total / rate


def profile(folder: Path, lib: Path, env: Mapping[str, str], timeout: float) -> str:
    """py-spy and tracemalloc of check, run --estimate and run --max-patterns 10."""
    folder.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or next((str(p) for p in (Path("/tmp/pyspy/bin/py-spy"),)
                                          if p.exists()), None)
    rate = 50
    parts: list[str] = []
    for name, args in (("check", ["check", str(lib)]),
                       ("estimate", ["run", str(lib), "--estimate"]),
                       ("run10", ["run", str(lib), "--max-patterns", "10"])):
        parts.append(f"### `gardener {' '.join([*args[:1], 'LIB', *args[2:]])}`\n")
        if spy:
            raw = folder / f"{name}.pyspy.txt"
            subprocess.run([spy, "record", "-r", str(rate), "-f", "raw", "--nolineno",
                            "--threads", "--subprocesses", "-o", str(raw), "--",
                            *gardener_command(), *args], env=dict(env), timeout=timeout,
                           capture_output=True, check=False)
            if raw.exists():
                cumulative, own, total = collapse(raw, rate)
                parts.append(f"py-spy, {total:.1f} s of samples on CPU (all threads and "
                             "processes), cumulative:\n")
                parts += [f"- {k}: {v:.1f} s" for k, v in cumulative[:25]]
                parts.append("\nself:\n")
                parts += [f"- {k}: {v:.1f} s" for k, v in own[:15]]
        mem = folder / f"{name}.tracemalloc.json"
        subprocess.run([sys.executable, "-c", TRACE, str(mem), *args], env=dict(env),
                       timeout=timeout, capture_output=True, check=False)
        if mem.exists():
            data = json.loads(mem.read_text())
            for tag, snap in data["snapshots"].items():
                parts.append(f"\ntracemalloc {tag}: {snap['current_mb']:.0f} MB traced, peak "
                             f"{snap['peak_mb']:.0f} MB; top sites (allocating line, "
                             "gardener line):\n")
                parts += [f"- {mb:.1f} MB {inner} <- {own}" for inner, own, mb in snap["top"]]
        parts.append("")
    text = "\n".join(parts)
    (folder / "profile.md").write_text(text, encoding="utf-8")
    return text


# --- main -------------------------------------------------------------------------------------

@contextlib.contextmanager
def workspace(out: Path | None, keep: bool) -> Iterator[Path]:
    if out is not None:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        yield out
        return
    tmp = Path(tempfile.mkdtemp(prefix="gardener-scale-"))
    try:
        yield tmp
    finally:
        if keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patterns", type=int, default=3600, help="files in the library")
    ap.add_argument("--out", type=Path, default=None, help="build here (emptied first)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per command")
    ap.add_argument("--write-docs", action="store_true", help=f"write {HEADING[3:]} into "
                    "docs/benchmarks.md")
    ap.add_argument("--profile", type=Path, default=None,
                    help="also profile check, run --estimate and run --max-patterns 10 here")
    args = ap.parse_args(argv)
    command = "bench/scale.py " + " ".join(argv if argv is not None else sys.argv[1:])
    started = dt.datetime.now(dt.UTC)
    where = machine()
    with workspace(args.out, args.keep) as work:
        lib, tiny, state = work / "lib", work / "tiny", work / "state"
        t0 = time.monotonic()
        built = build_library(lib, args.patterns)
        make_repository(lib, work / "origin.git")
        build_s = time.monotonic() - t0
        print(f"built {built.files} files ({built.real} real, {built.copies} copies in "
              f"{built.rounds} round(s); unparsed: {', '.join(built.unparsed) or 'none'}) "
              f"and committed in {build_s:.1f} s", file=sys.stderr, flush=True)
        one = next(rel for rel in sorted(p.relative_to(lib) for p in lib.rglob("*.md"))
                   if str(rel) not in built.unparsed)
        (tiny / one).parent.mkdir(parents=True)
        shutil.copyfile(lib / one, tiny / one)
        stand_in = StandIn()
        env = child_env(os.environ, state, stand_in)
        try:
            # The first run ever makes Prefect's database: a one-off, not start-up.
            first = measure("run (1 pattern, first ever)", ["run", str(tiny)], env,
                            args.timeout, stand_in)
            startup = {
                "check": measure("check (1 pattern)", ["check", str(tiny)], env, args.timeout),
                "prune --dry-run": measure("prune --dry-run (1 pattern)",
                                           ["prune", str(tiny), "--dry-run"], env,
                                           args.timeout),
                "run --estimate": measure("run --estimate (1 pattern)",
                                          ["run", str(tiny), "--estimate"], env, args.timeout,
                                          stand_in),
                "run --max-patterns 10": measure("run (1 pattern)",
                                                 ["run", str(tiny), "--max-patterns", "10"],
                                                 env, args.timeout, stand_in),
            }
            rows = [
                measure("check", ["check", str(lib)], env, args.timeout),
                measure("prune --dry-run", ["prune", str(lib), "--dry-run"], env,
                        args.timeout),
                measure("run --estimate", ["run", str(lib), "--estimate"], env, args.timeout,
                        stand_in),
                measure("run --max-patterns 10", ["run", str(lib), "--max-patterns", "10"],
                        env, args.timeout, stand_in),
                measure("run --max-patterns 60", ["run", str(lib), "--max-patterns", "60"],
                        env, args.timeout, stand_in),
            ]
            body = work / "pr-body.md"
            rows.append(measure("review --max-patterns 10",
                                ["review", str(lib), "--max-patterns", "10", "--body-file",
                                 str(body)], env, args.timeout, stand_in, cwd=lib))
            body_chars = len(body.read_text(encoding="utf-8")) if body.exists() else None
            links = written_links(lib)
            if len(links) >= 2:
                (rslug, rtarget), (pslug, ptarget) = links[0], links[1]
                rows.append(measure("reject", ["reject", rslug, rtarget, "--library", str(lib),
                                               "--reason", "bench"], env, args.timeout))
                rows.append(measure("promote", ["promote", pslug, ptarget, "--library",
                                                str(lib)], env, args.timeout))
            else:
                print("no written links to reject or promote", file=sys.stderr)
            profile_text = (profile(args.profile, lib, env, args.timeout)
                            if args.profile else "")
        finally:
            stand_in.close()
        failed = [m for m in rows if m.timed_out or m.rc not in (0, 1, 3)]
        for m in failed:
            print(f"--- {m.label}: exit {m.rc}\n{m.output[-3000:]}", file=sys.stderr)
    rendered = table(rows, startup, built.files, body_chars,
                     {str(body): "BODY.md", str(lib): "LIB"})
    header = (
        f"Command: `.venv/bin/python {command.strip()}`\n\n"
        f"Library: {built.files:,} files ({built.real:,} real: `../shared/corpus/"
        f"commons-os-patterns` and `../shared/gold/commons-engineering`; {built.copies:,} "
        f"copies `<slug>-copy-K` with their slugs, ids and the references among the copies "
        f"rewired; the corpus's {len(built.unparsed)} files whose YAML does not parse kept as "
        f"they are), one git commit, a bare `origin`. Model: a loopback stand-in answering at "
        f"once. {started:%Y-%m-%d %H:%M} UTC, commit {commit()}; {where}; "
        f"nproc {os.cpu_count()}, Python {platform.python_version()}.\n\n"
        "Each command is its own process (`gardener ...`, as a user runs it), one run each. "
        "CPU: user + system of the process and its children (`/usr/bin/time`, or the sampled "
        "tree when larger). Peak MB, process tree: the sum of the RSS of the command and its "
        f"children (Prefect's temporary server), sampled every {SAMPLE_S} s; largest process: "
        "`/usr/bin/time`'s maximum resident size. CPU per pattern beyond start-up: "
        "(CPU - CPU of the same command over a 1-pattern library) / library patterns, "
        "except where the notes say otherwise. Exit codes as the README's \"Exit codes\" "
        "says (`check` exits 1 on the two unparsed files). The very first `gardener run` "
        "(1 pattern, "
        f"Prefect's database made) took {first.wall_s:.1f} s wall, {first.cpu_s:.1f} s CPU; "
        "the start-up figure of run is a second run over it (nothing stale, no model call).")
    print(header + "\n\n" + rendered)
    if profile_text:
        print("\n" + profile_text)
    if args.write_docs:
        replace_section(DOC, HEADING, header + "\n\n" + rendered)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
