"""``gardener serve``'s server can be reached by its user: its auth string is in a file only
that user can read, and ``serve`` says where, never the string itself."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from gardener.cli.flows import server_note
from gardener.pipeline.prefect.runtime import write_auth_file

SECRET = "gardener:not-to-be-shown"


def test_the_auth_file_is_the_user_s_alone_and_sourceable(tmp_path: Path) -> None:
    path = tmp_path / "home" / "serve-auth-4200.env"
    write_auth_file(path, "http://127.0.0.1:4200", SECRET)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    shell = subprocess.run(
        ["sh", "-c", f'set -a; . "{path}"; set +a; '
                     'printf "%s\\n%s\\n" "$PREFECT_API_URL" "$PREFECT_API_AUTH_STRING"'],
        capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]})
    assert shell.stdout.splitlines() == ["http://127.0.0.1:4200/api", SECRET]


def test_the_auth_file_replaces_a_link_instead_of_writing_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me\n", encoding="utf-8")
    path = tmp_path / "serve-auth-4200.env"
    path.symlink_to(victim)
    write_auth_file(path, "http://127.0.0.1:4200", SECRET)
    assert victim.read_text(encoding="utf-8") == "keep me\n"
    assert not path.is_symlink() and SECRET in path.read_text(encoding="utf-8")


def test_serve_says_where_the_auth_string_is_and_never_says_it(tmp_path: Path) -> None:
    auth = tmp_path / "serve-auth-4200.env"
    write_auth_file(auth, "http://127.0.0.1:4200", SECRET)
    note = server_note("http://127.0.0.1:4200", tmp_path / "server.log", auth)
    assert "http://127.0.0.1:4200" in note and str(tmp_path / "server.log") in note
    assert f"set -a; . {auth}; set +a" in note and "prefect deployment run" in note
    assert "PREFECT_API_AUTH_STRING" in note
    assert SECRET not in note and SECRET.split(":")[1] not in note
