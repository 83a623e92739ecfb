"""The reference for `http_transfer_ratio`: what a hand-written endpoint does.

A Starlette app with one endpoint that reads the request on the event loop
and does the database work in Starlette's threadpool (as the dev server
runs a mutation), served by uvicorn with
the dev server's settings (the same event loop and HTTP parser: uvicorn's
"auto", uvloop and httptools where installed), over one sqlite3 file in WAL mode with
synchronous=NORMAL (the dev server's settings). It takes the same request
the dev server takes (`POST /api/mutation`, `{"path": "bank:transfer",
"args": {"source", "target", "amount"}}`, the amount as convex JSON's
`$integer`) and does the transfer as one would by hand: BEGIN IMMEDIATE,
read both balances, check, two UPDATEs, COMMIT, under one lock around one
shared connection (the fastest a threadpool can share SQLite's one writer).

Run: `python bench/http_reference.py DB_PATH PORT` (bench/functions.py starts it).
"""

from __future__ import annotations

import base64
import sqlite3
import struct
import sys
import threading
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["make_app", "open_accounts"]


def open_accounts(path: str, owners: list[str], balance: int) -> None:
    """The reference's table, with `owners` holding `balance` each."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE accounts (owner TEXT PRIMARY KEY, balance INTEGER NOT NULL)")
    conn.executemany("INSERT INTO accounts VALUES (?, ?)", [(o, balance) for o in owners])
    conn.close()


def _int64(value: Any) -> int:
    return int(struct.unpack("<q", base64.b64decode(value["$integer"]))[0])


def make_app(path: str) -> Starlette:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    lock = threading.Lock()

    def transfer(body: dict[str, Any]) -> JSONResponse:
        args = body["args"]
        amount = _int64(args["amount"])
        with lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                (src,) = conn.execute(
                    "SELECT balance FROM accounts WHERE owner = ?", (args["source"],)
                ).fetchone()
                conn.execute(
                    "SELECT balance FROM accounts WHERE owner = ?", (args["target"],)
                ).fetchone()
                if amount <= 0 or src < amount:
                    conn.execute("ROLLBACK")
                    return JSONResponse({"status": "error", "errorMessage": "refused"}, 400)
                conn.execute(
                    "UPDATE accounts SET balance = balance - ? WHERE owner = ?",
                    (amount, args["source"]),
                )
                conn.execute(
                    "UPDATE accounts SET balance = balance + ? WHERE owner = ?",
                    (amount, args["target"]),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return JSONResponse({"status": "success", "value": None, "logLines": []})

    async def endpoint(request: Request) -> JSONResponse:
        body = await request.json()
        response: JSONResponse = await run_in_threadpool(transfer, body)
        return response

    return Starlette(routes=[Route("/api/mutation", endpoint, methods=["POST"])])


def main() -> None:
    path, port = sys.argv[1], int(sys.argv[2])
    config = uvicorn.Config(
        make_app(path),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
