"""The Convex HTTP API on the dev server, through the official Python client
and raw requests: calls of every kind, both argument shapes and formats,
errors, and bad input that must change nothing."""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from convex import ConvexError, ConvexInt64
from convex.http_client import ConvexExecutionError, ConvexHttpClient
from convex.values import json_to_convex

from tests.support.devserver import DevServer, start_dev_server

APP = Path(__file__).parent / "apps" / "behaviours"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    s = start_dev_server(APP, tmp_path_factory.mktemp("behaviours") / "data")
    yield s
    s.stop()


def post(server: DevServer, route: str, body: Any, **kwargs: Any) -> requests.Response:
    if isinstance(body, bytes | str):
        return requests.post(server.url + route, data=body, timeout=30, **kwargs)
    return requests.post(server.url + route, json=body, timeout=30, **kwargs)


def count(server: DevServer) -> int:
    return int(ConvexHttpClient(server.url).query("items:count").value)


# ---- the official client -------------------------------------------------------


def test_official_client_runs_the_bank(app_server: DevServer) -> None:
    client = ConvexHttpClient(app_server.url)
    ann = client.mutation("bank:open", {"owner": "ann"})
    assert isinstance(ann, str) and len(ann) == 36
    client.mutation("bank:open", {"owner": "bob"})
    client.mutation("bank:deposit", {"owner": "ann", "amount": ConvexInt64(100)})
    client.mutation("bank:transfer", {"source": "ann", "target": "bob", "amount": ConvexInt64(30)})
    assert client.query("bank:balance", {"owner": "ann"}) == ConvexInt64(70)
    assert client.query("bank:balance", {"owner": "bob"}) == ConvexInt64(30)
    assert client.action("bank:audit") == ConvexInt64(100)
    with pytest.raises(ConvexError) as e:
        client.mutation(
            "bank:transfer", {"source": "bob", "target": "ann", "amount": ConvexInt64(31)}
        )
    # The HTTP client hands errorData over as it arrived (still encoded).
    assert json_to_convex(e.value.data) == {
        "code": "INSUFFICIENT_FUNDS",
        "balance": ConvexInt64(30),
    }
    assert client.query("bank:total") == ConvexInt64(100)


def test_internal_functions_are_not_callable_by_clients(app_server: DevServer) -> None:
    client = ConvexHttpClient(app_server.url)
    client.mutation("bank:open", {"owner": "carl"})
    with pytest.raises(Exception, match="404 FUNCTION_NOT_FOUND"):
        client.mutation("bank:close", {"owner": "carl"})
    assert client.query("bank:balance", {"owner": "carl"}) == ConvexInt64(0)
    # ... but the admin key may (that is how the CLI's `run` works).
    admin = ConvexHttpClient(app_server.url)
    admin.set_admin_auth(app_server.admin_key)
    admin.mutation("bank:close", {"owner": "carl"})
    with pytest.raises(ConvexError):
        client.query("bank:balance", {"owner": "carl"})


def test_log_lines_reach_the_client(server: DevServer, capsys: pytest.CaptureFixture[str]) -> None:
    client = ConvexHttpClient(server.url)
    client.set_debug(True)
    client.mutation("items:chatty", {"name": "loud"})
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "[LOG] adding loud",
        "[LOG] second line",
        "[INFO] info about loud",
        "[WARN] careful",
    ]
    assert "items:chatty" in server.log() and "[LOG] adding loud" in server.log()


# ---- argument shapes, formats, routes ----------------------------------------------


def test_args_as_object_or_one_element_array_and_both_formats(server: DevServer) -> None:
    plain = post(server, "/api/mutation", {"path": "items:add", "args": {"name": "a"}}).json()
    assert plain["status"] == "success"
    wrapped = post(
        server, "/api/mutation", {"path": "items:add", "args": [{"name": "b"}], "format": "json"}
    )
    assert wrapped.json()["status"] == "success"
    encoded = post(
        server,
        "/api/query",
        {"path": "items:by_name", "args": {"name": "a"}, "format": "convex_encoded_json"},
    ).json()
    (doc,) = encoded["value"]
    assert doc["_id"] == plain["value"] and doc["name"] == "a"
    # int64 in both formats: tagged in convex_encoded_json, a number in json.
    n = {"$integer": base64.b64encode(struct.pack("<q", 7)).decode()}
    args = {"id": doc["_id"], "tags": ["x", "y", "z"], "n": n}
    assert post(server, "/api/mutation", {"path": "items:typed", "args": args}).json()["value"] == 3
    enc = post(
        server,
        "/api/mutation",
        {"path": "items:typed", "args": args, "format": "convex_encoded_json"},
    ).json()
    assert enc["value"] == {"$integer": base64.b64encode(struct.pack("<q", 3)).decode()}


def test_run_route_and_function_route(server: DevServer) -> None:
    before = count(server)
    r = post(server, "/api/run/items/add", {"args": {"name": "via-run"}})
    assert r.status_code == 200 and r.json()["status"] == "success"
    assert post(server, "/api/run/items/count", {"args": {}}).json()["value"] == before + 1
    assert (
        post(server, "/api/function", {"path": "items:count", "args": {}}).json()["value"]
        == before + 1
    )
    assert post(server, "/api/run/nothing", {"args": {}}).status_code == 404


def test_path_normalization(server: DevServer) -> None:
    assert (
        post(server, "/api/query", {"path": "items.js:count", "args": {}}).json()["status"]
        == "success"
    )


def test_wrong_kind_is_refused(server: DevServer) -> None:
    r = post(server, "/api/query", {"path": "items:add", "args": {"name": "x"}})
    assert r.status_code == 400 and r.json()["code"] == "WRONG_FUNCTION_KIND"


# ---- actions --------------------------------------------------------------------


def test_async_action_runs_mutations_concurrently_and_internal_ones(server: DevServer) -> None:
    before = count(server)
    out = ConvexHttpClient(server.url).action("actions:add_async", {"name": "act"})
    assert len(out["ids"]) == 2 and out["count"] == before + 2


def test_sync_action_calls_an_internal_action(server: DevServer) -> None:
    r = post(server, "/api/action", {"path": "actions:add_sync", "args": {"name": "s"}}).json()
    assert r["status"] == "success" and r["value"] == 42
    assert "[LOG] inner action ran" in r["logLines"]


def test_an_action_catches_a_mutation_convex_error_and_nothing_is_written(
    server: DevServer,
) -> None:
    out = ConvexHttpClient(server.url).action("actions:catches")
    assert out == {"caught": {"code": "NOPE", "name": "caught"}}
    assert ConvexHttpClient(server.url).query("items:by_name", {"name": "caught"}) == []


# ---- errors from functions that ran ------------------------------------------------


def test_a_handler_that_raises(server: DevServer) -> None:
    r = post(server, "/api/query", {"path": "items:boom", "args": {}})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "error" and "errorData" not in body
    assert re.fullmatch(
        r"\[Request ID: [0-9a-f]{16}\] Server Error\nUncaught ValueError: kaput\n"
        r"    at boom \(\.\./behaviours/items\.py:\d+:\d+\)\n",
        body["errorMessage"],
    ), body["errorMessage"]
    assert "Traceback" in server.log() and 'raise ValueError("kaput")' in server.log()
    with pytest.raises(ConvexExecutionError, match="kaput"):
        ConvexHttpClient(server.url).query("items:boom")


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        ("items:write_then_boom", "Uncaught RuntimeError: after the write"),
        ("items:write_then_convex_error", "Uncaught ConvexError"),
        ("items:bad_return", "ReturnsValidationError: Value does not match validator."),
    ],
)
def test_a_failed_mutation_writes_nothing(server: DevServer, fn: str, message: str) -> None:
    before = count(server)
    body = post(server, "/api/mutation", {"path": fn, "args": {"name": "ghost"}}).json()
    assert body["status"] == "error" and message in body["errorMessage"]
    assert count(server) == before
    assert ConvexHttpClient(server.url).query("items:by_name", {"name": "ghost"}) == []


def test_a_result_that_is_not_a_convex_value(server: DevServer) -> None:
    body = post(server, "/api/query", {"path": "items:not_a_value", "args": {}}).json()
    assert body["status"] == "error" and "not a Convex value" in body["errorMessage"]


def test_an_oversize_result(server: DevServer) -> None:
    body = post(server, "/api/query", {"path": "items:big", "args": {}}).json()
    assert body["status"] == "error" and "limit" in body["errorMessage"]


# ---- bad requests: 4xx, nothing runs -------------------------------------------------


def _bad_requests(server: DevServer) -> list[tuple[str, Any, int, str]]:
    an_id = post(server, "/api/mutation", {"path": "items:add", "args": {"name": "target"}}).json()[
        "value"
    ]
    stamp_id = post(server, "/api/query", {"path": "items:count", "args": {}})  # any valid request
    assert stamp_id.status_code == 200
    bank_like_id = "z" * 36
    n = {"$integer": base64.b64encode(struct.pack("<q", 1)).decode()}
    typed = {"id": an_id, "tags": [], "n": n}
    return [
        ("/api/mutation", {"path": "items:nope", "args": {}}, 404, "FUNCTION_NOT_FOUND"),
        ("/api/mutation", {"path": "nomodule:add", "args": {}}, 404, "FUNCTION_NOT_FOUND"),
        (
            "/api/mutation",
            {"path": "items:secret_add", "args": {"name": "x"}},
            404,
            "FUNCTION_NOT_FOUND",
        ),
        ("/api/mutation", {"path": "items:add", "args": {}}, 400, "ARGUMENTS_INVALID"),
        (
            "/api/mutation",
            {"path": "items:add", "args": {"name": "x", "extra": 1}},
            400,
            "ARGUMENTS_INVALID",
        ),
        ("/api/mutation", {"path": "items:add", "args": {"name": 3}}, 400, "ARGUMENTS_INVALID"),
        (
            "/api/mutation",
            {"path": "items:typed", "args": {**typed, "n": 1}},
            400,
            "ARGUMENTS_INVALID",
        ),
        (
            "/api/mutation",
            {"path": "items:typed", "args": {**typed, "id": bank_like_id}},
            400,
            "ARGUMENTS_INVALID",
        ),
        (
            "/api/mutation",
            {"path": "items:typed", "args": {**typed, "tags": [1]}},
            400,
            "ARGUMENTS_INVALID",
        ),
        (
            "/api/mutation",
            {"path": "items:add", "args": [{"name": "x"}, {}]},
            400,
            "ARGUMENTS_INVALID",
        ),
        ("/api/mutation", {"path": "items:add", "args": "name"}, 400, "ARGUMENTS_INVALID"),
        ("/api/mutation", {"path": "items:add", "args": {"$name": "x"}}, 400, "ARGUMENTS_INVALID"),
        (
            "/api/mutation",
            {"path": "items:add", "args": {"name": {"$integer": "!!"}}},
            400,
            "ARGUMENTS_INVALID",
        ),
        (
            "/api/mutation",
            {"path": "items:add", "args": {"name": "x"}, "format": "xml"},
            400,
            "BAD_FORMAT",
        ),
        ("/api/mutation", {"args": {"name": "x"}}, 400, "BAD_REQUEST"),
        ("/api/mutation", '{"path": "items:add", "args": {"name": "x"', 400, "BAD_JSON_BODY"),
        ("/api/mutation", "[1, 2]", 400, "BAD_JSON_BODY"),
        ("/api/mutation", b"\xff\xfe", 400, "BAD_JSON_BODY"),
    ]


def test_bad_requests_get_their_error_and_change_nothing(server: DevServer) -> None:
    for route, body, status, code in _bad_requests(server):
        before = count(server)
        r = post(server, route, body)
        assert (r.status_code, r.json()["code"]) == (status, code), (body, r.text)
        assert r.json()["message"]
        assert count(server) == before, body


def test_oversize_arguments_are_refused(server: DevServer) -> None:
    before = count(server)
    body = b'{"path": "items:add", "args": {"name": "' + b"x" * (16 << 20) + b'"}}'
    r = post(server, "/api/mutation", body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "REQUEST_TOO_LARGE"
    assert count(server) == before


def test_user_tokens_are_refused_without_an_auth_provider(server: DevServer) -> None:
    client = ConvexHttpClient(server.url)
    client.set_auth("eyJhbGciOiJub25lIn0.e30.")
    with pytest.raises(Exception, match="401 Unauthenticated: No auth provider is configured"):
        client.query("items:count")
    bad_admin = ConvexHttpClient(server.url)
    bad_admin.set_admin_auth("not-the-key")
    with pytest.raises(Exception, match="401 BAD_ADMIN_KEY"):
        bad_admin.query("items:count")


# ---- determinism ------------------------------------------------------------------


def test_queries_see_a_frozen_clock_and_seeded_random(server: DevServer) -> None:
    import time

    started = time.time()
    out = ConvexHttpClient(server.url).query("clock:frozen")
    assert out["t1"] == out["t2"] == out["before"]
    assert out["dt"] == pytest.approx(out["t1"], abs=1e-6)  # datetime keeps microseconds
    assert started - 1 < out["t1"] <= time.time()
    assert out["r1"] != out["r2"]
    again = ConvexHttpClient(server.url).query("clock:frozen")
    assert again["r1"] != out["r1"] and again["u"] != out["u"]  # seeded per call


def test_mutations_see_a_frozen_clock_and_actions_the_real_one(server: DevServer) -> None:
    m = ConvexHttpClient(server.url).mutation("clock:stamp")
    assert m["t"] == m["later"]
    a = ConvexHttpClient(server.url).action("clock:real")
    assert a["t2"] - a["t1"] >= 0.015


@pytest.mark.parametrize("kind", ["query", "mutation"])
def test_network_is_refused_in_queries_and_mutations(server: DevServer, kind: str) -> None:
    port = float(server.url.rsplit(":", 1)[1])
    before = count(server)
    body = post(server, f"/api/{kind}", {"path": f"net:from_{kind}", "args": {"port": port}}).json()
    assert body["status"] == "error"
    assert "NON_DETERMINISTIC" in body["errorMessage"] and "action" in body["errorMessage"]
    assert count(server) == before


def test_network_is_open_in_actions(server: DevServer) -> None:
    port = float(server.url.rsplit(":", 1)[1])
    assert ConvexHttpClient(server.url).action("net:from_action", {"port": port}) is True


# ---- concurrency through HTTP ---------------------------------------------------------


def test_parallel_transfers_over_http_keep_the_total(start_server: Any) -> None:
    server = start_server()
    client = ConvexHttpClient(server.url)
    owners = [f"owner{i}" for i in range(6)]
    for owner in owners:
        client.mutation("bank:open", {"owner": owner})
        client.mutation("bank:deposit", {"owner": owner, "amount": ConvexInt64(100)})

    def worker(k: int) -> int:
        c = ConvexHttpClient(server.url)
        done = 0
        for j in range(25):
            src, dst = owners[(k + j) % 6], owners[(k + 2 * j + 1) % 6]
            if src == dst:
                continue
            try:
                c.mutation(
                    "bank:transfer", {"source": src, "target": dst, "amount": ConvexInt64(7)}
                )
                done += 1
            except ConvexError as e:
                assert e.data["code"] == "INSUFFICIENT_FUNDS"
        return done

    with ThreadPoolExecutor(8) as pool:
        done = sum(pool.map(worker, range(8)))
    assert done > 0
    balances = [client.query("bank:balance", {"owner": o}) for o in owners]
    assert sum(b.value for b in balances) == 600
    assert all(b.value >= 0 for b in balances)
    assert client.query("bank:total") == ConvexInt64(600)


def test_browsers_may_call_the_api_cross_origin(server: DevServer) -> None:
    preflight = requests.options(
        server.url + "/api/query",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,convex-client",
        },
        timeout=10,
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] in ("*", "http://localhost:5173")
    r = post(
        server,
        "/api/query",
        {"path": "items:count", "args": {}},
        headers={"Origin": "http://localhost:5173"},
    )
    assert r.headers["access-control-allow-origin"] == "*"
