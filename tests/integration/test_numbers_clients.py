"""Numbers and ConvexError text through the official clients on a real dev
server: `returns=v.number()` with a plain `len(...)` reads as a JS number
(not a BigInt) and a Python float; `returns=v.int64()` as a BigInt and a
ConvexInt64; an int64 beyond ±(2**53 - 1) sent to a `v.number()` argument is
refused with a message that says what to do; a ConvexError's data reads as
JSON in the message and arrives as data. (Documents: test_compat_numbers_js.py.)"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from convex import ConvexClient, ConvexError, ConvexInt64
from convex.http_client import ConvexHttpClient

from tests.support.devserver import DevServer, dev_server

JS = Path(__file__).resolve().parents[1] / "js"

APP = """
from runtime import ConvexError, mutation, query, v

@mutation(args={"body": v.string()})
def send(ctx, args):
    ctx.db.insert("messages", {"body": args["body"]})

@query(args={}, returns=v.number())
def count(ctx, args):
    return len(ctx.db.query("messages").collect())

@query(args={}, returns=v.int64())
def count64(ctx, args):
    return len(ctx.db.query("messages").collect())

@query(args={"n": v.number()}, returns=v.number())
def twice(ctx, args):
    return args["n"] * 2

@query(args={})
def fail(ctx, args):
    raise ConvexError({"code": "NOT_FOUND", "n": 1.5, "tags": ["a", None, True]})
"""

ERROR_TEXT = 'Uncaught ConvexError: {"code":"NOT_FOUND","n":1.5,"tags":["a",null,true]}'

# Run with `node --input-type=module` in tests/js (imports resolve from there).
SCRIPT = """
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
const client = new ConvexHttpClient(process.argv[1]);
const kind = (x) => `${typeof x} ${String(x)}`;
await client.mutation(anyApi.nums.send, { body: "a" });
const out = {
  count: kind(await client.query(anyApi.nums.count, {})),
  count64: kind(await client.query(anyApi.nums.count64, {})),
  twice: kind(await client.query(anyApi.nums.twice, { n: 21 })),
};
try {
  await client.query(anyApi.nums.twice, { n: 2n ** 53n + 1n });
  out.big = "accepted";
} catch (e) { out.big = e.message; }
try { await client.query(anyApi.nums.fail, {}); } catch (e) {
  out.failMessage = e.message;
  out.failData = e.data;
  out.failName = e.name;
}
console.log(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    root = tmp_path_factory.mktemp("numbers")
    functions = root / "functions"
    functions.mkdir()
    (functions / "nums.py").write_text(APP)
    with dev_server(functions, root / "data") as s:
        yield s


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_js_client_reads_a_number_for_returns_number(server: DevServer) -> None:
    done = subprocess.run(
        ["node", "--input-type=module", "-e", SCRIPT, server.url],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    got = json.loads(done.stdout)
    assert got["count"].startswith("number ")  # len(...) under returns=v.number()
    assert got["count64"].startswith("bigint ")
    assert got["twice"] == "number 42"
    assert "ArgumentValidationError" in got["big"] and "no exact float64" in got["big"]
    assert got["failName"] == "ConvexError"
    assert ERROR_TEXT in got["failMessage"]
    assert got["failData"] == {"code": "NOT_FOUND", "n": 1.5, "tags": ["a", None, True]}


def test_python_client_reads_a_float_for_returns_number(server: DevServer) -> None:
    client = ConvexHttpClient(server.url)
    client.mutation("nums:send", {"body": "b"})
    count = client.query("nums:count", {})
    assert type(count) is float and count >= 1.0
    assert isinstance(client.query("nums:count64", {}), ConvexInt64)
    assert client.query("nums:twice", {"n": 21}) == 42.0
    with pytest.raises(Exception) as refused:
        client.query("nums:twice", {"n": ConvexInt64(2**53 + 1)})
    assert "no exact float64" in str(refused.value) and "v.int64()" in str(refused.value)
    with pytest.raises(ConvexError) as failed:
        ConvexClient(server.url).query("nums:fail", {})  # the socket client keeps the message
    assert ERROR_TEXT in str(failed.value)
    assert failed.value.data == {"code": "NOT_FOUND", "n": 1.5, "tags": ["a", None, True]}
