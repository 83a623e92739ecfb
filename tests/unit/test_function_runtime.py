"""The function runtime in-process: determinism guards, log capture, HTTP
routes, environment variables, action timeouts and nested calls."""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import socket
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from runtime import ConvexError, HttpRouter, action, http_action, internal_query, mutation, query, v
from runtime.database import Database
from runtime.functions import FunctionRegistry
from runtime.functions.determinism import NonDeterministicError, frozen, install, platform_io
from runtime.functions.environment import Environment, EnvVarError
from runtime.functions.executor import Executor, FunctionNotFound, WrongFunctionKind
from runtime.functions.http_router import RouteError
from runtime.functions.logs import LogLines, capture
from runtime.functions.logs import install as install_logs
from runtime.limits import LOG_LINES_PER_FUNCTION
from runtime.store.sqlite import SqliteStore

install()


# ---- determinism --------------------------------------------------------------------


def test_frozen_clock_and_seeded_random_only_on_the_frozen_thread() -> None:
    seen: dict[str, Any] = {}
    inside = threading.Event()
    release = threading.Event()

    def other() -> None:
        inside.wait(5)
        seen["other"] = time.time()
        release.set()

    t = threading.Thread(target=other)
    t.start()
    with frozen(1000.0, seed=7, kind="query"):
        inside.set()
        release.wait(5)
        seen["t"] = (time.time(), time.time_ns(), dt.datetime.now().timestamp())
        seen["r"] = [random.random(), random.randint(0, 10**9)]
        seen["u"] = os.urandom(4)
    with frozen(1000.0, seed=7, kind="query"):
        again = [random.random(), random.randint(0, 10**9)]
    t.join()
    assert seen["t"] == (1000.0, 1000 * 10**9, 1000.0)
    assert seen["other"] > 1_700_000_000  # the real clock elsewhere
    assert again == seen["r"]  # same seed, same draws: a re-run sees the same values
    assert time.time() > 1_700_000_000 and dt.datetime.now().timestamp() > 1_700_000_000


def test_network_is_refused_while_frozen_and_allowed_for_platform_io() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with frozen(1.0, 1, "mutation"):
            with pytest.raises(NonDeterministicError, match="from an action"):
                socket.create_connection(("127.0.0.1", port), timeout=1)
            with platform_io(), socket.create_connection(("127.0.0.1", port), timeout=1):
                assert time.time() > 1_700_000_000  # platform I/O sees the real clock
            assert time.time() == 1.0
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            pass


def test_patched_datetime_still_answers_isinstance_for_real_datetimes() -> None:
    made_before_install = datetime(2020, 1, 1)  # this module imported the real class
    assert dt.datetime is not datetime
    assert isinstance(made_before_install, dt.datetime)
    assert isinstance(dt.datetime(2020, 1, 1), datetime)
    assert issubclass(datetime, dt.datetime)


# ---- log capture -----------------------------------------------------------------------


def test_print_and_logging_are_captured_per_call() -> None:
    install_logs()
    logging.getLogger().setLevel(logging.INFO)
    lines = LogLines()
    with capture(lines):
        print("hello", "world")
        print("partial", end="")
        logging.getLogger("app.mod").info("n=%d", 3)
        logging.getLogger("runtime.internal").warning("not the app's")
    assert lines.finish() == ["[LOG] hello world", "[INFO] n=3", "[LOG] partial"]


def test_log_lines_are_bounded() -> None:
    lines = LogLines()
    for i in range(LOG_LINES_PER_FUNCTION + 5):
        lines.add("LOG", str(i))
    out = lines.finish()
    assert len(out) == LOG_LINES_PER_FUNCTION + 1 and "5 more log lines dropped" in out[-1]


# ---- HTTP routes -------------------------------------------------------------------------


def test_router_matches_exact_paths_then_the_longest_prefix() -> None:
    http = HttpRouter()
    a, b, c = (http_action(lambda ctx, req, n=n: n) for n in "abc")
    http.route(path="/files/special", method="GET", handler=a)
    http.route(path_prefix="/files/", method="GET", handler=b)
    http.route(path_prefix="/files/deep/", method="get", handler=c)
    assert http.lookup("GET", "/files/special").action is a  # type: ignore[union-attr]
    assert http.lookup("GET", "/files/x").action is b  # type: ignore[union-attr]
    assert http.lookup("GET", "/files/deep/x").action is c  # type: ignore[union-attr]
    assert http.lookup("POST", "/files/x") is None and http.methods_for("/files/x") == ["GET"]
    with pytest.raises(RouteError, match="twice"):
        http.route(path="/files/special", method="GET", handler=a)
    with pytest.raises(RouteError, match="end with '/'"):
        http.route(path_prefix="/nope", method="GET", handler=a)
    with pytest.raises(RouteError, match="exactly one"):
        http.route(method="GET", handler=a)
    with pytest.raises(RouteError, match="method"):
        http.route(path="/x", method="FETCH", handler=a)


# ---- environment variables -----------------------------------------------------------------


def test_environment_update_applies_and_removes() -> None:
    env = Environment(SqliteStore(":memory:"))
    env.update({"APP_TEST_A": "1", "APP_TEST_B": "2"})
    assert os.environ["APP_TEST_A"] == "1" and env.list()["APP_TEST_B"] == "2"
    env.update({"APP_TEST_A": None})
    assert "APP_TEST_A" not in os.environ and env.list() == {"APP_TEST_B": "2"}
    with pytest.raises(EnvVarError):
        env.update({"OK_NAME": "x", "bad-name": "y"})
    assert "OK_NAME" not in env.list()  # all or nothing
    env.update({"APP_TEST_B": None})


# ---- the executor ---------------------------------------------------------------------------


@internal_query(args={})
def _secret(ctx: Any, args: Any) -> str:
    return "internal"


@query(args={"x": v.float64()})
def _double(ctx: Any, args: Any) -> float:
    return float(args["x"] * 2)


@action
def _calls_by_object(ctx: Any, args: Any) -> Any:
    return [ctx.run_query(_secret), ctx.run_query(_double, {"x": 2.5})]


@action
def _stuck(ctx: Any, args: Any) -> None:
    time.sleep(2)


@action
async def _stuck_async(ctx: Any, args: Any) -> None:
    import asyncio

    await asyncio.sleep(2)


@mutation
def _weird_error(ctx: Any, args: Any) -> None:
    raise ConvexError({1, 2})


def _executor(**kwargs: Any) -> Executor:
    registry = FunctionRegistry(
        {
            "m:secret": _secret,
            "m:double": _double,
            "m:calls": _calls_by_object,
            "m:stuck": _stuck,
            "m:stuck_async": _stuck_async,
            "m:weird": _weird_error,
        }
    )
    return Executor(Database(SqliteStore(":memory:")), registry, **kwargs)


def test_actions_call_functions_by_object_including_internal_ones() -> None:
    result = _executor().call("m:calls", {})
    assert result.ok and result.value == ["internal", 5.0]


def test_resolution_errors() -> None:
    ex = _executor()
    with pytest.raises(FunctionNotFound):
        ex.call("m:secret", {})
    assert ex.call("m:secret", {}, public_only=False).value == "internal"
    with pytest.raises(WrongFunctionKind):
        ex.call("m:double", {"x": 1.0}, kind="mutation")


@pytest.mark.parametrize("fn", ["m:stuck", "m:stuck_async"])
def test_actions_time_out(fn: str) -> None:
    started = time.monotonic()
    result = _executor(action_timeout=0.2).call(fn, {})
    assert not result.ok and "ACTION_TIMEOUT" in (result.error_message or "")
    assert time.monotonic() - started < 1.5


def test_convex_error_with_data_that_is_not_a_value() -> None:
    result = _executor().call("m:weird", {})
    assert not result.ok and "not a Convex value" in (result.error_message or "")


def test_prod_mode_redacts_messages_but_logs_them() -> None:
    seen = []
    result = _executor(prod=True, on_call=seen.append).call("m:weird", {})
    assert result.error_message == f"[Request ID: {result.request_id}] Server Error"
    assert seen[0].logged_message and "not a Convex value" in seen[0].logged_message


def test_loader_reports_the_failing_file_and_line(tmp_path: Path) -> None:
    from runtime.functions import FunctionLoadError, load_functions

    (tmp_path / "good.py").write_text(
        "from runtime import query\n@query\ndef f(ctx, args):\n    return 1\n"
    )
    (tmp_path / "bad.py").write_text("x = 1\nraise KeyError('missing')\n")
    with pytest.raises(FunctionLoadError, match=r"bad.py:2: KeyError"):
        load_functions(tmp_path, namespace="_unit_loader")
    (tmp_path / "bad.py").unlink()
    (tmp_path / "_shared.py").write_text("VALUE = 41\n")
    (tmp_path / "uses.py").write_text(
        "from runtime import query\nfrom ._shared import VALUE\n@query\ndef g(ctx, args):\n    return VALUE + 1\n"
    )
    registry = load_functions(tmp_path, namespace="_unit_loader")
    assert sorted(registry) == ["good:f", "uses:g"]
