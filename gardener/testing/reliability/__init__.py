"""Never lose a byte: the reliability scenarios, shared by the tests and the benchmark.

Nine scenarios run the real ``gardener run`` against `gardener.testing.fake_openai` on
loopback and check every file afterwards: random faults (`fault_pass`), a dead endpoint
(`dead_endpoint`), a deadline (`deadline`), ``write_atomic`` killed (`kill_writes`), the
command killed (`crash_pass`), a state file cut in half (`corrupt_state`), files edited
during the pass (`concurrent_edits`), hostile input (`hostile`) and secrets (`secret_pass`).
``tests/test_reliability.py`` runs them small, in the test's process; ``bench/reliability.py``
runs them at size, each ``gardener`` in its own process, and writes docs/reliability.md.
"""

from gardener.testing.reliability.checks import (
    REASONS,
    FileCheck,
    check_files,
    fingerprint,
    new_links,
    offered_targets,
    reason_of,
    snapshot,
    tree,
    unexplained,
    written_problem,
)
from gardener.testing.reliability.crashes import (
    WRITER,
    CorruptState,
    Crashes,
    Kill,
    WriteKills,
    corrupt_state,
    crash_pass,
    end_all,
    kill_writes,
)
from gardener.testing.reliability.hostile import (
    INJECTION,
    Hostile,
    HostileResult,
    HostileRow,
    ObedientResponder,
    alias_bomb,
    hostile,
    hostile_inputs,
    pattern_file,
)
from gardener.testing.reliability.leaks import SECRETS, Secrets, scan, secret_pass
from gardener.testing.reliability.passes import (
    EditingResponder,
    Edits,
    FaultPass,
    Halted,
    PassRun,
    concurrent_edits,
    dead_endpoint,
    deadline,
    fault_pass,
)
from gardener.testing.reliability.run import (
    ENDPOINT_VARIABLES,
    FAKE_GITHUB_TOKEN,
    FAKE_KEY,
    MODEL,
    ROOT,
    TODAY,
    Ran,
    Runner,
    RunSpec,
    gardener_run,
    process_env,
    subprocess_runner,
)

__all__ = [
    "ENDPOINT_VARIABLES", "FAKE_GITHUB_TOKEN", "FAKE_KEY", "INJECTION", "MODEL", "REASONS",
    "ROOT", "SECRETS", "TODAY", "WRITER", "CorruptState", "Crashes", "EditingResponder",
    "Edits", "FaultPass", "FileCheck", "Halted", "Hostile", "HostileResult", "HostileRow",
    "Kill", "ObedientResponder", "PassRun", "Ran", "RunSpec", "Runner", "Secrets",
    "WriteKills", "alias_bomb", "check_files", "concurrent_edits", "corrupt_state",
    "crash_pass", "dead_endpoint", "deadline", "end_all", "fault_pass", "fingerprint",
    "gardener_run", "hostile", "hostile_inputs", "kill_writes", "new_links", "offered_targets",
    "pattern_file", "process_env", "reason_of", "scan", "secret_pass", "snapshot",
    "subprocess_runner", "tree", "unexplained", "written_problem",
]
