"""Prefect's environment for the gardener: local, offline and quiet unless asked otherwise.

Prefect reads its settings from the environment once, when it is imported, and hands the same
environment to the temporary API server it starts by itself when no ``PREFECT_API_URL`` is
set. So everything here is one of Prefect's documented settings, set as an environment
variable by :func:`configure` before ``prefect`` is imported (``gardener.pipeline`` calls it
first thing). A value the user set is never overridden: pointing ``PREFECT_API_URL`` at a real
server, or ``PREFECT_HOME`` somewhere else, works as Prefect documents.

What it sets, and why:

- ``PREFECT_HOME``: a folder of the gardener's own (``$XDG_STATE_HOME/graph-gardener/prefect``,
  ``~/.local/state/...`` by default), so its run history does not mix with, or lock, another
  project's Prefect database.
- ``PREFECT_SERVER_ALLOW_EPHEMERAL_MODE``: with no server configured, Prefect starts its own
  temporary server for the run (a new ``PREFECT_HOME`` has no profile that turns it on).
- ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS``: 90 rather than Prefect's 20. On a busy
  2-core machine (CI, or a local model server computing beside it) the temporary server took
  longer than 20 s to answer and the whole run failed before its first pattern.
- No analytics: the server would otherwise send a telemetry heartbeat to prefect.io at
  start-up. Nothing here reaches out to the internet.
- Logging: Prefect's task-run INFO lines and the server's shutdown tracebacks go to a log
  file under ``PREFECT_HOME/logs``, not the terminal, and only from WARNING up. So do
  instructor's and openai's error lines about a failed call: that failure is the pattern's
  outcome, shown in the summary. The root logger keeps its console handler at WARNING, so the
  gardener's own warnings and errors, and any other library's, still show. ``verbose`` gives
  Prefect's own console logging back.

``gardener serve`` needs a server with Prefect's scheduler, which the temporary one does not
run: :func:`api_server` starts ``prefect server start`` for as long as it serves.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from gardener.errors import GardenerError
from gardener.library.write import write_atomic
from gardener.local import process as supervisor
from gardener.paths import state_folder
from gardener.pipeline.prefect.reaper import children_running, end_with_this_process

LOG_CONFIG_FILE = "gardener-logging.yml"
LOG_FILE = "logs/prefect.log"
SERVER_LOG_FILE = "logs/server.log"
SERVER_AUTH_FILE = "serve-auth-{port}.env"
"""Under ``PREFECT_HOME``: how to reach ``serve``'s server, auth string included (`auth_file`)."""
SERVER_PORT = 4200
"""Prefect's usual port for a local server; another free one is taken when it is in use."""

EPHEMERAL_SERVER = "prefect.server.api.server:create_app"
"""What the command line of Prefect's temporary server runs (``ps`` shows it)."""

QUIET_LOGGERS = ("prefect", "docket", "uvicorn", "fastapi", "alembic", "sqlalchemy", "aiosqlite",
                 "websockets", "asyncio", "instructor", "openai", "httpx", "httpcore",
                 "EventsWorker", "APILogWorker")
"""Prefect, the server it starts, and the model client's libraries. Prefect's background
queue services log under their class names, outside ``prefect``. In quiet mode their
warnings and errors go to the log file only: the gardener uses no asyncio of its own, and
every model failure instructor or openai logs is also the failed pattern's outcome, which
the summary shows."""

EPHEMERAL_STARTUP_S = "90"
"""Seconds the temporary server may take to start (Prefect's default: 20)."""
OURS = "GARDENER_PREFECT_DEFAULTS"
"""Names of the variables the gardener set (rather than the user), comma-separated, kept in
the environment itself: a later call, or a child process (a served flow run), may change
them, never the user's."""
_current: Runtime | None = None


@dataclass(frozen=True)
class Runtime:
    """Where Prefect keeps its state and logs for this process."""

    home: Path
    log_file: Path | None
    """None when the user's own logging config is in charge (or ``verbose``)."""
    verbose: bool


def default_home(environ: Mapping[str, str]) -> Path:
    """``$XDG_STATE_HOME/graph-gardener/prefect``; a temp folder when HOME is not writable."""
    return state_folder("prefect", environ)


def logging_config() -> dict[str, Any]:
    """Prefect's logging config for quiet runs (``${PREFECT_HOME}`` is filled in by Prefect).

    Prefect's loggers do not propagate to the root logger, so its records reach only the file
    (and, for run loggers, the API, where the Prefect UI shows them).
    """
    file_handler = {
        "class": "logging.handlers.RotatingFileHandler",
        "formatter": "file",
        "filename": "${PREFECT_HOME}/" + LOG_FILE,
        "maxBytes": 5_000_000,
        "backupCount": 2,
        "encoding": "utf-8",
        "delay": True,
    }
    quiet = {"level": "WARNING", "handlers": ["file"], "propagate": False}
    loggers: dict[str, Any] = {name: dict(quiet) for name in QUIET_LOGGERS}
    loggers.update({
        "prefect.server": {**quiet, "level": "${PREFECT_SERVER_LOGGING_LEVEL}"},
        # Run loggers also feed the API; their records go up to "prefect" for the file.
        # A flow run logs a few INFO lines (start, end); a task run's "Finished in state
        # Completed()" per pattern would cost a lock and an API record each: warnings only.
        "prefect.flow_runs": {"level": "INFO", "handlers": ["api"]},
        "prefect.task_runs": {"level": "WARNING", "handlers": ["api"]},
        "prefect.workers": {"level": "NOTSET", "handlers": ["worker_api"]},
        "prefect.extra": {"level": "INFO", "handlers": ["api"], "propagate": False},
    })
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "file": {"format": "%(asctime)s %(process)d %(levelname)-7s %(name)s - %(message)s"},
            "console": {"format": "%(levelname)s %(name)s: %(message)s"},
        },
        "handlers": {
            "file": file_handler,
            "console": {"class": "logging.StreamHandler", "formatter": "console",
                        "stream": "ext://sys.stderr", "level": "WARNING"},
            "api": {"class": "prefect.logging.handlers.APILogHandler", "level": 0},
            "worker_api": {"class": "prefect.logging.handlers.WorkerAPILogHandler", "level": 0},
        },
        "loggers": loggers,
        "root": {"level": "WARNING", "handlers": ["console"]},
    }


def _write_if_changed(path: Path, text: str) -> None:
    """Atomic, and untouched when equal: several processes may configure at once."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)


def _ours(environ: Mapping[str, str]) -> set[str]:
    return {n for n in environ.get(OURS, "").split(",") if n}


def _mark(environ: MutableMapping[str, str], name: str, ours: bool) -> None:
    names = _ours(environ) | {name} if ours else _ours(environ) - {name}
    environ[OURS] = ",".join(sorted(names))


def _user_set(environ: Mapping[str, str], name: str) -> bool:
    return name in environ and name not in _ours(environ)


def _default(environ: MutableMapping[str, str], name: str, value: str) -> None:
    """Set ``name`` unless the user did; values the gardener set earlier may change."""
    if _user_set(environ, name):
        return
    environ[name] = value
    _mark(environ, name, True)


def _drop(environ: MutableMapping[str, str], name: str) -> None:
    if name in _ours(environ):
        environ.pop(name, None)
        _mark(environ, name, False)


def configure(*, verbose: bool = False,
              environ: MutableMapping[str, str] | None = None) -> Runtime:
    """Prepare Prefect's environment; call before ``prefect`` is imported.

    Called again (tests, or ``--verbose`` after a quiet import), it updates what it set
    before and re-applies Prefect's logging config if Prefect is already loaded.
    """
    env = os.environ if environ is None else environ
    if _user_set(env, "PREFECT_HOME"):
        home = Path(env["PREFECT_HOME"]).expanduser()
    else:
        home = default_home(env)
        _default(env, "PREFECT_HOME", str(home))
        # A user of Prefect keeps their profiles (an API URL set with `prefect config set`)
        # in Prefect's own home; moving the home must not lose them.
        profiles = Path.home() / ".prefect" / "profiles.toml"
        if profiles.is_file():
            _default(env, "PREFECT_PROFILES_PATH", str(profiles))
    _default(env, "PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    _default(env, "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT", "false")
    _default(env, "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE", "true")
    _default(env, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", EPHEMERAL_STARTUP_S)
    _default(env, "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    _default(env, "PREFECT_LOGGING_EXTRA_LOGGERS", "gardener")

    log_file: Path | None = None
    user_logging = (_user_set(env, "PREFECT_LOGGING_CONFIG_PATH")
                    or "PREFECT_LOGGING_SETTINGS_PATH" in env)
    if verbose:
        _drop(env, "PREFECT_LOGGING_CONFIG_PATH")
    elif not user_logging:
        config_path = home / LOG_CONFIG_FILE
        _write_if_changed(config_path, yaml.safe_dump(logging_config(), sort_keys=False))
        (home / LOG_FILE).parent.mkdir(parents=True, exist_ok=True)
        _default(env, "PREFECT_LOGGING_CONFIG_PATH", str(config_path))
        log_file = home / LOG_FILE
    if env is os.environ and "prefect" in sys.modules:
        _reapply_logging()
    done = Runtime(home=home, log_file=log_file, verbose=verbose)
    if env is os.environ:
        global _current
        _current = done
    return done


def ensure() -> Runtime:
    """The configured runtime; the quiet default when no caller chose one before.

    When Prefect was imported first, the process belongs to Prefect (a worker or a served
    deployment running a flow, or a program of the user's own importing the flows): its
    settings are left exactly as they are.
    """
    if _current is not None:
        return _current
    if "prefect" in sys.modules:
        env = os.environ
        home = Path(env.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
        ours = "PREFECT_LOGGING_CONFIG_PATH" in _ours(env)
        return Runtime(home=home, log_file=home / LOG_FILE if ours else None, verbose=False)
    return configure()


def _reapply_logging() -> None:
    """Prefect is loaded already: make it read the environment again, then its logging."""
    from prefect.context import refresh_global_settings_context
    from prefect.logging.configuration import setup_logging

    refresh_global_settings_context()
    setup_logging(incremental=False)


class ServerError(GardenerError, RuntimeError):
    """Prefect's server did not come up or answer (``serve``'s own, or the temporary one of
    a run): nothing was gardened; the message says why."""

    exit_code = 2


@contextmanager
def api_server(*, timeout_s: float = 120.0) -> Iterator[str | None]:
    """A local Prefect server with all its services, for as long as the block runs.

    Schedules need the server's scheduler service, which Prefect's temporary server (started
    for one-off runs) does not run: this is Prefect's own ``prefect server start`` on a free
    local port, stopped when the block ends (and when this process dies, however it dies).
    Yields the UI address, or None when the user points ``PREFECT_API_URL`` at a server of
    their own (then nothing is started). While it runs, `auth_file` says how to reach it.
    """
    if os.environ.get("PREFECT_API_URL", "").strip():
        yield None
        return
    home = ensure().home
    try:
        port = supervisor.free_port(preferred=SERVER_PORT)
    except supervisor.NoFreePort:
        raise ServerError("no free local port for the Prefect server") from None
    address = f"http://127.0.0.1:{port}"
    log_path = home / SERVER_LOG_FILE
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
               "--port", str(port), "--analytics-off"]
    auth = f"gardener:{secrets.token_urlsafe(24)}"
    process = _start_server(command, log_path, env=server_environment(os.environ, auth, address))
    try:
        _wait_for(address, process, log_path, timeout_s, auth=auth)
        write_auth_file(auth_file(address), address, auth)
        _default(os.environ, "PREFECT_API_AUTH_STRING", auth)  # this process is its client
        _default(os.environ, "PREFECT_API_URL", f"{address}/api")
        if "prefect" in sys.modules:
            from prefect.context import refresh_global_settings_context

            refresh_global_settings_context()
        yield address
    finally:
        _drop(os.environ, "PREFECT_API_URL")
        _drop(os.environ, "PREFECT_API_AUTH_STRING")
        auth_file(address).unlink(missing_ok=True)
        supervisor.stop(process, grace_s=10)


def auth_file(address: str) -> Path:
    """Where `api_server` keeps the settings of a client of its server at ``address`` while
    it runs: ``PREFECT_HOME/serve-auth-PORT.env``."""
    port = address.rstrip("/").rsplit(":", 1)[-1]
    return ensure().home / SERVER_AUTH_FILE.format(port=port)


def write_auth_file(path: Path, address: str, auth: str) -> None:
    """``PREFECT_API_URL`` and ``PREFECT_API_AUTH_STRING`` of the server at ``address``, as
    lines of a shell and ``.env`` file only this user can read (mode 600, made anew, never
    through a link): Prefect's docs keep an auth string in "a private .env file", and the
    UI asks for it. The auth string itself is never printed or logged; the path is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # a link is removed, not followed
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(f"# gardener serve: Prefect's server at {address}, while it runs. The UI asks "
                  "for the auth string;\n# prefect commands read both once this file is "
                  "sourced: set -a; . THIS_FILE; set +a\n"
                  f"PREFECT_API_URL='{address}/api'\nPREFECT_API_AUTH_STRING='{auth}'\n")


def server_environment(environ: Mapping[str, str], auth: str, address: str) -> dict[str, str]:
    """The environment of the server ``gardener serve`` starts: not open to whoever can reach
    127.0.0.1 (another user of the machine, a web page the browser lets through). Prefect's
    documented settings: an API auth string (basic auth, random per start), CSRF protection
    on, and CORS allowing only the server's own UI."""
    return {**environ, "PREFECT_SERVER_API_AUTH_STRING": auth,
            "PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED": "true",
            "PREFECT_SERVER_API_CORS_ALLOWED_ORIGINS": address}


def _start_server(command: list[str], log_path: Path,
                  env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A server process appending to ``log_path``, ended with this process even if killed.

    In a session of its own: Ctrl-C in a terminal goes to our process group, and the served
    flow runs still report their end to the server while ``serve`` shuts down.
    """
    process = supervisor.start(command, log_path, env)
    end_with_this_process(process.pid)
    return process


def connect() -> str:
    """Prefect's API, answering: the user's server, or Prefect's own temporary one.

    With no ``PREFECT_API_URL``, Prefect's first client starts its temporary server (and
    stops it when this process exits); it is started here, before the flow, so that a server
    that cannot start stops the run with its reason rather than as a crashed flow, and so that
    it ends with this process even when that is killed (``gardener.pipeline.prefect.reaper``).
    Returns the API's address. Raises :class:`ServerError` when it does not answer.
    """
    from prefect import get_client

    try:
        with get_client(sync_client=True) as client:
            url = str(client.api_url).rstrip("/")
            failed = client.api_healthcheck()
    except (RuntimeError, ValueError) as exc:  # what Prefect raises when it cannot start one
        said = f"Prefect's temporary server did not start: {exc}"
        raise ServerError(_with_prefect_log(said)) from None
    if failed is not None:
        said = f"Prefect's API at {url} did not answer: {failed}"
        if _user_set(os.environ, "PREFECT_API_URL"):
            said += ("; is that Prefect server running? (unset PREFECT_API_URL for a "
                     "temporary server of this run's own)")
        raise ServerError(_with_prefect_log(said))
    for pid in children_running(EPHEMERAL_SERVER):
        end_with_this_process(pid)
    return url


def _with_prefect_log(message: str) -> str:
    """A server failure's message, with the end of Prefect's log file when Prefect's own
    logging (the server's included) goes there, as it does unless ``--verbose``."""
    log_file = ensure().log_file
    if log_file is None or not log_file.is_file():
        return message
    return f"{message}\nThe end of Prefect's log, {log_file}:\n{supervisor.tail(log_file, 15)}"


def _wait_for(address: str, process: subprocess.Popen[bytes], log_path: Path,
              timeout_s: float, interval_s: float = 0.25,
              what: str = "the local Prefect server", auth: str | None = None) -> None:
    user, _, password = (auth or "").partition(":")
    credentials = (user, password) if auth else None
    deadline = time.monotonic() + timeout_s
    while True:
        code = process.poll()
        if code is not None:
            raise ServerError(f"{what} exited with code {code} before answering; the end "
                              f"of its output, {log_path}:\n{supervisor.tail(log_path, 15)}")
        try:
            if httpx.get(f"{address}/api/health", timeout=2.0,
                         auth=credentials).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() >= deadline:
            said = supervisor.tail(log_path, 15)
            raise ServerError(f"{what} at {address} did not answer within {timeout_s:g} s; "
                              f"the end of its output, {log_path}:\n{said}")
        time.sleep(interval_s)
