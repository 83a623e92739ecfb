"""Errors as Convex's clients show them, on both shells (the dev server and
the local AWS harness): the official JS clients (`ConvexHttpClient` over
HTTP, `ConvexClient` over the sync socket, tests/js/errors.mjs), the HTTP
API and HTTP actions, in dev and in production. The expected messages are
those of Convex's own error tests (js-integration-tests `customErrors`),
with the app's Python frames in place of its TypeScript ones."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.awslocal import start_aws_local
from tests.support.devserver import start_dev_server
from tests.support.shells import Backend, app_on_shell

APP = Path(__file__).parent / "apps" / "compat_errors"
JS = Path(__file__).resolve().parents[1] / "js"
NODE = shutil.which("node")
ID = r"\[Request ID: [a-f0-9]{16}\] Server Error"
HINT = "Did you forget to run `python -m runtime dev` or `python -m runtime deploy`?"
BOOM = {"message": "Boom boom bop", "code": "123n"}  # as the JS client's data, bigint shown as 123n


def frame(fn: str, *, awaited: bool = False) -> str:
    prefix = "async " if awaited else ""
    return rf"    at {prefix}{fn} \(\.\./compat_errors/custom_errors\.py:\d+:\d+\)"


def shown(message: str, *, socket_kind: str | None = None) -> str:
    """The message without what the JS socket client adds around it
    (`[CONVEX Q(path)] ... Called by client`), trimmed (as Convex's tests do)."""
    message = re.sub(r"^\[CONVEX [QMA]\([^)]*\)\] ", "", message)
    return re.sub(r"\n+  Called by client$", "", message.strip())


@pytest.fixture(scope="module")
def app(
    shell: str, dynamodb_for: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    yield from app_on_shell(APP, "errors", shell, dynamodb_for, tmp_path_factory)


@pytest.fixture(scope="module")
def prod_app(
    shell: str, dynamodb_for: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    data = tmp_path_factory.mktemp(f"errors-prod-{shell}") / "data"
    server: Backend
    if shell == "dev":
        server = start_dev_server(APP, data, prod=True)
    else:
        server = start_aws_local(
            APP,
            data,
            table=f"e2e{uuid.uuid4().hex[:10]}",
            dynamodb_endpoint=dynamodb_for,
            extra=["--prod"],
        )
    yield server
    server.stop()


def js(server: Backend, *calls: str) -> dict[tuple[str, str], dict[str, Any]]:
    """What each JS client showed for each call: {(client, path): event}."""
    if NODE is None:
        pytest.skip("Node.js is not installed")
    done = subprocess.run(
        ["node", "errors.mjs", server.url, *calls],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0, (events, done.stderr)
    return {(e["client"], e["path"]): e for e in events}


def site(server: Backend) -> str:
    return getattr(server, "site_url", server.url)


CASES = [
    # (kind, function, args, expected text after the first line, data, is a ConvexError)
    (
        "query",
        "query_throwing_convex_error",
        f"Uncaught ConvexError: Boom boom bop\n{frame('query_throwing_convex_error')}",
        "Boom boom bop",
    ),
    (
        "query",
        "query_throwing_normal_error",
        f"Uncaught ValueError: Normal error\n{frame('query_throwing_normal_error')}",
        None,
    ),
    (
        "query",
        "query_throwing_convex_error_subclass",
        re.escape('Uncaught FooError: {"message":"Boom boom bop","code":"123n"}')
        + f"\n{frame('query_throwing_convex_error_subclass')}",
        BOOM,
    ),
    (
        "mutation",
        "mutation_throwing_convex_error",
        re.escape('Uncaught ConvexError: {"message":"Boom boom bop","code":"123n"}')
        + f"\n{frame('mutation_throwing_convex_error')}",
        BOOM,
    ),
    (
        "action",
        "action_throwing_convex_error",
        f"Uncaught ConvexError: Boom boom bop\n{frame('action_throwing_convex_error')}",
        "Boom boom bop",
    ),
    (
        "action",
        "action_calling_query_throwing_convex_error",
        "Uncaught ConvexError: Uncaught ConvexError: Boom boom bop\n"
        f"{frame('query_throwing_convex_error')}\n\n"
        f"{frame('action_calling_query_throwing_convex_error')}",
        "Boom boom bop",
    ),
    (
        "action",
        "action_calling_query_throwing_convex_error_subclass",
        re.escape(
            'Uncaught ConvexError: Uncaught FooError: {"message":"Boom boom bop","code":"123n"}'
        )
        + f"\n{frame('query_throwing_convex_error_subclass')}\n\n"
        f"{frame('action_calling_query_throwing_convex_error_subclass', awaited=True)}",
        BOOM,
    ),
    (
        "action",
        "action_calling_mutation_throwing_convex_error",
        re.escape(
            'Uncaught ConvexError: Uncaught ConvexError: {"message":"Boom boom bop","code":"123n"}'
        )
        + f"\n{frame('mutation_throwing_convex_error')}\n\n"
        f"{frame('action_calling_mutation_throwing_convex_error')}",
        BOOM,
    ),
    (
        "action",
        "action_calling_action_throwing_convex_error",
        "Uncaught ConvexError: Uncaught ConvexError: Boom boom bop\n"
        f"{frame('action_throwing_convex_error')}\n\n"
        f"{frame('action_calling_action_throwing_convex_error', awaited=True)}",
        "Boom boom bop",
    ),
    (
        "action",
        "action_calling_query_throwing_normal_error",
        "Uncaught FunctionCallError: Uncaught ValueError: Normal error\n"
        f"{frame('query_throwing_normal_error')}\n\n"
        f"{frame('action_calling_query_throwing_normal_error')}",
        None,
    ),
]


def test_each_client_shows_convex_shaped_errors_with_their_data(app: Backend) -> None:
    seen = js(app, *(f"{kind}|custom_errors:{fn}" for kind, fn, _, _ in CASES))
    for _, fn, expected, data in CASES:
        for client in ("http", "socket"):
            event = seen[(client, f"custom_errors:{fn}")]
            assert event["event"] == "error", event
            assert re.fullmatch(f"{ID}\n{expected}", shown(event["message"])), (client, event)
            assert event["convexError"] is (data is not None), (client, event)
            assert event.get("data") == data, (client, event)


def test_a_calling_action_catches_what_its_calls_raise(app: Backend) -> None:
    value = js(app, "action|custom_errors:action_catching")[
        ("http", "custom_errors:action_catching")
    ]
    caught = value["value"]
    assert caught["convex"]["type"] == "ConvexError" and caught["convex"]["data"] == BOOM
    assert caught["convex"]["message"].startswith('Uncaught FooError: {"message":"Boom boom bop"')
    assert caught["other"]["type"] == "FunctionCallError"
    assert caught["other"]["message"].startswith("Uncaught ValueError: Normal error\n    at ")
    assert caught["missing"] == {
        "type": "FunctionNotFound",
        "message": f"Could not find function for 'custom_errors:nope'. {HINT}",
    }


def test_unknown_and_internal_functions_read_as_convex_words_them(app: Backend) -> None:
    seen = js(app, "query|custom_errors:nope", "query|custom_errors:hidden")
    for fn in ("nope", "hidden"):
        sentence = f"Could not find public function for 'custom_errors:{fn}'. {HINT}"
        socket = shown(seen[("socket", f"custom_errors:{fn}")]["message"])
        assert re.fullmatch(f"{ID}\n{re.escape(sentence)}", socket), socket
        # Over HTTP a 404 with the error code (as Convex with UDF_404_ON_BAD_PATH).
        r = requests.post(
            f"{app.url}/api/query", json={"path": f"custom_errors:{fn}", "args": {}}, timeout=10
        )
        assert r.status_code == 404
        assert r.json() == {"code": "FUNCTION_NOT_FOUND", "message": sentence}
        assert sentence in seen[("http", f"custom_errors:{fn}")]["message"]


ARGUMENTS = [
    (
        '{"a": 1}',
        "ArgumentValidationError: Value does not match validator.\nPath: .a\nValue: 1.0\n"
        "Validator: v.string()",
    ),
    (
        "{}",
        "ArgumentValidationError: Object is missing the required field `a`. Consider wrapping "
        "the field validator in `v.optional(...)` if this is expected.\n\nObject: {}\n"
        "Validator: v.object({a: v.string()})",
    ),
    (
        '{"a": "x", "b": [1]}',
        "ArgumentValidationError: Object contains extra field `b` that is not in the validator."
        '\n\nObject: {a: "x", b: [1.0]}\nValidator: v.object({a: v.string()})',
    ),
]


@pytest.mark.parametrize(("args", "message"), ARGUMENTS)
def test_argument_validation_reads_as_convex_words_it(
    app: Backend, args: str, message: str
) -> None:
    seen = js(app, f"query|custom_errors:takes_a_string|{args}")
    socket = shown(seen[("socket", "custom_errors:takes_a_string")]["message"])
    assert re.fullmatch(f"{ID}\n{re.escape(message)}", socket), socket
    r = requests.post(
        f"{app.url}/api/query",
        json={"path": "custom_errors:takes_a_string", "args": json.loads(args)},
        timeout=10,
    )
    assert r.status_code == 400 and r.json() == {"code": "ARGUMENTS_INVALID", "message": message}


def test_return_validation_reads_as_convex_words_it(app: Backend) -> None:
    seen = js(app, 'query|custom_errors:returns_a_number|{"a": "x"}')
    expected = "ReturnsValidationError: Value does not match validator.\n\nValue: 1.5\nValidator: v.string()"
    for client in ("http", "socket"):
        message = shown(seen[(client, "custom_errors:returns_a_number")]["message"])
        assert re.fullmatch(f"{ID}\n{re.escape(expected)}", message), (client, message)


def test_the_request_id_is_in_the_server_log(app: Backend) -> None:
    r = requests.post(
        f"{app.url}/api/query",
        json={"path": "custom_errors:query_throwing_normal_error", "args": {}},
        timeout=10,
    )
    request_id = re.match(r"\[Request ID: ([a-f0-9]{16})\]", r.json()["errorMessage"])
    assert request_id is not None
    log = app.log()
    assert request_id[1] in log and "Uncaught ValueError: Normal error" in log


def test_http_actions_fail_with_convex_json_bodies(app: Backend) -> None:
    r = requests.get(f"{site(app)}/failer_custom", timeout=10)
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert re.fullmatch(f"{ID}: Uncaught ConvexError: Hello world!", body["code"]), body
    assert body["data"] == "Hello world!"
    assert body["trace"].startswith("Uncaught ConvexError: Hello world!\n    at failer_custom (")

    body = requests.get(f"{site(app)}/failer", timeout=10).json()
    assert re.fullmatch(f"{ID}: Uncaught ValueError: Oh no!", body["code"]) and "data" not in body
    assert re.fullmatch(
        r"Uncaught ValueError: Oh no!\n    at failer \(\.\./compat_errors/http\.py:\d+:\d+\)\n",
        body["trace"],
    )

    body = requests.get(f"{site(app)}/failer_nested", timeout=10).json()
    nested = 'Uncaught ConvexError: Uncaught FooError: {"message":"Boom boom bop","code":"123n"}'
    assert re.match(
        f"{ID}: {re.escape(nested)}\n{frame('query_throwing_convex_error_subclass')}\n",
        body["code"],
    )
    assert body["trace"].startswith(nested)
    # The data as Convex sends it in a body: Convex-encoded JSON (an int64 as $integer).
    assert body["data"] == {"message": "Boom boom bop", "code": {"$integer": "ewAAAAAAAAA="}}


def test_production_shows_the_request_id_and_the_data_only(prod_app: Backend) -> None:
    calls = [f"{kind}|custom_errors:{fn}" for kind, fn, _, _ in CASES]
    seen = js(
        prod_app, *calls, "query|custom_errors:nope", 'query|custom_errors:takes_a_string|{"a": 1}'
    )
    for _, fn, _, data in CASES:
        for client in ("http", "socket"):
            event = seen[(client, f"custom_errors:{fn}")]
            assert re.fullmatch(ID, shown(event["message"])), (client, event)
            assert event.get("data") == data and event["convexError"] is (data is not None)
    for fn in ("nope", "takes_a_string"):
        assert re.fullmatch(ID, shown(seen[("socket", f"custom_errors:{fn}")]["message"]))

    r = requests.get(f"{site(prod_app)}/failer_custom", timeout=10)
    assert r.status_code == 500
    body = r.json()
    assert (
        set(body) == {"code", "data"}
        and re.fullmatch(ID, body["code"])
        and body["data"] == "Hello world!"
    )
    body = requests.get(f"{site(prod_app)}/failer", timeout=10).json()
    assert set(body) == {"code"} and re.fullmatch(ID, body["code"])
    # The server's log keeps the whole error under the id the caller read.
    r = requests.post(
        f"{prod_app.url}/api/query",
        json={"path": "custom_errors:query_throwing_normal_error", "args": {}},
        timeout=10,
    )
    request_id = re.fullmatch(
        r"\[Request ID: ([a-f0-9]{16})\] Server Error", r.json()["errorMessage"]
    )
    assert request_id is not None and request_id[1] in prod_app.log()
