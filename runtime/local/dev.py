"""`python -m runtime dev`: the local backend on one machine.

One uvicorn server listens on two loopback sockets: the Convex HTTP API on
`--port` and the HTTP actions on `--site-port`; requests are dispatched by
the port they arrived on, and only those addressed to a loopback name are
served (`LoopbackHostOnly`: DNS rebinding). Data is kept in SQLite under
`--data` (the folder 0700, its files 0600); the functions folder is watched
and reloaded on every change.

Stopping (Ctrl-C, SIGTERM) waits SHUTDOWN_GRACE_SECONDS for requests in
flight, then abandons them: an action may run for minutes and a stuck one
forever, and Python cannot stop a thread. The actions still running are
logged by name, and the process then leaves with `os._exit`: a stuck
action's thread may sit anywhere, in a worker the interpreter would
otherwise wait for at exit (`asyncio.to_thread`'s).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from runtime.backend import ADMIN_KEY_FILE, AdminKeyError, Backend, ReloadReport, read_admin_key
from runtime.cli.env_file import write_env_file
from runtime.files.local import LocalBlobStore
from runtime.functions import logs
from runtime.http.api import make_api_app
from runtime.http.inline import InlineCalls
from runtime.http.loopback import LoopbackHostOnly
from runtime.http.site import make_site_app
from runtime.limits import SHUTDOWN_GRACE_SECONDS
from runtime.local.ws_frames import DirectTextProtocol
from runtime.store.sqlite import SqliteStore
from runtime.sync.hub import SyncHub

from .calllog import CallLog
from .listen import BindError, listen
from .watch import Watcher

__all__ = ["DevOptions", "dev_urls", "run_dev"]

DB_FILE = "db.sqlite3"
FILES_DIR = "files"
"""Stored files' bytes, one file per blob (`runtime/files/local.py`)."""


@dataclass
class DevOptions:
    functions: Path
    data: Path
    port: int = 3210
    site_port: int = 3211
    host: str = "127.0.0.1"
    prod: bool = False
    static: Path | None = None
    """A built web app served at the API's origin (`--static DIR`)."""
    env_file: Path | None = Path(".env.local")
    """Where to write the URL and the admin key's place for the other
    commands (`runtime/cli/env_file.py`); None: nowhere."""
    codegen: bool = True
    """Regenerate `<functions>/_generated` (typed bindings) on every load."""


class _ByPort:
    """ASGI app that sends each connection to the app of the port it came in on."""

    def __init__(self, apps: dict[int, Any]) -> None:
        self._apps = apps
        self._default = next(iter(apps.values()))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        server = scope.get("server")
        app = self._apps.get(server[1], self._default) if server else self._default
        await app(scope, receive, send)


def _sweep_orphans(backend: Backend, log: CallLog) -> None:
    """Remove blobs a crash left without a `_storage` document (in the
    background: serving starts at once)."""
    if backend.files is None:
        return
    try:
        removed = backend.files.sweep_orphans()
    except Exception as e:  # a damaged folder must not stop the server
        log.write(f"file sweep failed: {type(e).__name__}: {e}")
        return
    if removed:
        log.write(f"removed {removed} stored file(s) left without a _storage document by a crash")


def dev_urls(host: str, api_port: int, site_port: int) -> dict[str, str]:
    """The built-in URL variables functions see (as Convex's local backend
    sets them: the API and the HTTP actions on their loopback ports)."""
    shown = f"[{host}]" if ":" in host else host
    return {
        "CONVEX_CLOUD_URL": f"http://{shown}:{api_port}",
        "CONVEX_SITE_URL": f"http://{shown}:{site_port}",
    }


def _report(log: CallLog, report: ReloadReport, what: str) -> None:
    if report.ok:
        log.write(f"{what}: {report.functions} functions ready")
    else:
        log.write(
            f"{what} FAILED, still serving the previous {report.functions} functions:\n{report.message}"
        )


def _bindings(log: CallLog, backend: Backend) -> None:
    """Regenerate the typed client bindings from the functions just loaded
    (only changed files are written); a failure is logged, never fatal."""
    from runtime.codegen import GENERATED, generate

    try:
        written = generate(backend.functions_dir, registry=backend.registry)
    except Exception as e:  # a bad validator must not stop the server
        log.write(f"codegen FAILED (the bindings are unchanged): {type(e).__name__}: {e}")
        return
    if written:
        log.write(f"codegen: wrote {', '.join(p.name for p in written)} in {GENERATED}/")


def _configure_logging() -> None:
    """INFO and up reach the log; a running function's records go to its
    call's lines instead (see runtime.functions.logs), not here too."""
    handler = logging.StreamHandler(sys.__stderr__)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(lambda record: not logs.capturing())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


class _Terminated(Exception):
    """SIGTERM, once uvicorn has stopped serving: it hands the signal back to
    the handler in place before it (the default one would end the process
    before the cleanup below), as it hands SIGINT back as KeyboardInterrupt."""


def _terminated(signum: int, frame: object) -> None:
    raise _Terminated


def run_dev(options: DevOptions) -> int:
    logs.install()
    _configure_logging()
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    functions = options.functions.resolve()
    if not functions.is_dir():
        raise SystemExit(f"no functions folder at {functions} (pass --functions DIR)")
    static = options.static.resolve() if options.static is not None else None
    if static is not None and not (static / "index.html").is_file():
        raise SystemExit(f"--static {static}: no index.html there (build the web app first)")
    options.data.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        admin_key = read_admin_key(options.data, create=True)
    except AdminKeyError as e:
        raise SystemExit(f"cannot start: {e.message}") from None
    assert admin_key is not None
    try:
        api_sock = listen(options.host, options.port, "HTTP API")
        site_sock = listen(options.host, options.site_port, "HTTP actions")
    except BindError as e:
        raise SystemExit(str(e)) from None
    log = CallLog()

    def progress(table: str, index: str, done: int) -> None:
        log.write(f"building index {table}.{index}: {done} documents")

    api_port, site_port = api_sock.getsockname()[1], site_sock.getsockname()[1]
    store = SqliteStore(str(options.data / DB_FILE))
    backend = Backend(
        store,
        functions,
        admin_key=admin_key,
        prod=options.prod,
        on_call=log,
        on_progress=progress,
        snapshots=store.snapshot,
        urls=dev_urls(options.host, api_port, site_port),
        blobs=LocalBlobStore(options.data / FILES_DIR),
    )
    report = backend.reload()
    _report(log, report, f"loaded {functions}")
    if options.codegen and report.ok:
        _bindings(log, backend)
    hub = SyncHub(backend.database, backend.executor, store.snapshot, verify=backend.verify_token)
    backend.add_listener(hub.notice)
    if backend.files is not None:
        backend.files.on_commit = hub.wake
    backend.add_reload_listener(hub.invalidate_all)
    hub.start()
    threading.Thread(target=_sweep_orphans, args=(backend, log), daemon=True).start()
    backend.start_timer()  # scheduled functions and crons; their runs show in the call log

    def reload() -> None:
        report = backend.reload()
        _report(log, report, "reloaded")
        if options.codegen and report.ok:
            _bindings(log, backend)

    watcher = Watcher(functions, reload)
    watcher.start()
    app = LoopbackHostOnly(
        _ByPort(
            {
                api_sock.getsockname()[1]: make_api_app(
                    backend, hub, static=static, inline=InlineCalls()
                ),
                site_sock.getsockname()[1]: make_site_app(backend),
            }
        )
    )
    # loop and http left at "auto": uvloop and httptools where installed (the
    # `local` extra), else asyncio and h11. They take about a quarter of the
    # server's CPU per request off (bench/functions.py, http_transfer_*).
    # No permessage-deflate: on loopback it saves nothing, and it costs a
    # compression per socket per message, so a result shared by a thousand
    # watchers would be compressed a thousand times (bench/reactivity.py's
    # fan-out to 1,000 `websockets` clients, which offer it: 52 -> 47 ms).
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        access_log=False,
        ws_per_message_deflate=False,
        ws=DirectTextProtocol,  # direct writes for the sync socket (ws_frames.py)
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    server = uvicorn.Server(config)
    api_url = dev_urls(options.host, api_port, site_port)["CONVEX_CLOUD_URL"]
    key_file = (options.data / ADMIN_KEY_FILE).resolve()
    if options.env_file is not None:
        write_env_file(
            options.env_file,
            {
                "CONVEX_URL": api_url,
                "PYCONVEX_URL": api_url,
                "PYCONVEX_ADMIN_KEY_FILE": str(key_file),
            },
        )
    log.write(
        f"pyconvex dev backend ready: API http://{options.host}:{api_port}, HTTP actions "
        f"http://{options.host}:{site_port}, data {options.data}{' (prod mode)' if options.prod else ''}"
        + (f"\nweb app ({static}): http://{options.host}:{api_port}/" if static else "")
        + f"\nadmin key in {key_file}; dashboard {api_url}/_dashboard"
        + (f"\nwrote {options.env_file} (the CLI's commands read it)" if options.env_file else "")
    )
    signal.signal(signal.SIGTERM, _terminated)
    try:
        server.run(sockets=[api_sock, site_sock])
    except (KeyboardInterrupt, _Terminated):
        pass
    finally:
        abandoned = backend.executor.actions.running()
        backend.stop_timer(1.0)
        watcher.stop()
        hub.stop()
        backend.close()
    now = time.monotonic()
    for call in abandoned:
        chain = " -> ".join(call.chain())
        log.write(f"stopping: abandoned action {chain} (running {now - call.started:.1f} s)")
    log.write("pyconvex dev backend stopped")
    if abandoned:  # their threads may keep the interpreter from exiting
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
