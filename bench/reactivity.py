"""Live-query benchmarks: write-to-push latency, invalidation cost, fan-out.

Figures (one run):
- push_1_p50_ms / push_1_p99_ms: one client watching a channel; another
  connection sends a mutation into it; time from sending the mutation to
  the watcher receiving the Transition with the new message (dev server,
  real WebSockets on loopback).
- push_1000_p50_ms / push_1000_p99_ms: the same with 1,000 clients each
  watching its own channel (the writes touch one of them).
- fanout_1000_ms: 1,000 clients watching one query; one write; time until
  the last of them has the Transition (median over repeats).
- fanout_1000_raw_clients_ms: the same with clients that cost next to
  nothing (raw sockets, no frame or JSON parsing: bench/fanout_client.py),
  so the figure is the server's fan-out, not the bench's 1,000 parsers.
- hub_push_1000_us: the hub's step for one write watched by 1,000
  connections (one query each, the same args), in-process, each send only
  taking the message's text: the hub's share of the fan-out.
- send_floor_1000_ms: 1,000 plain `send` calls of a Transition-sized frame
  from one Python thread to 1,000 loopback sockets, until another thread
  has read them all: the floor of any design that writes each socket.
- invalidation_100_us / invalidation_10000_us / invalidation_ratio: the
  hub's work per write (a step: read the feed, look up touched queries)
  when 100 or 10,000 subscriptions exist that the write does not touch,
  in-process.

Run: `python bench/reactivity.py [--quick]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import selectors
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.asyncio.client import ClientConnection, connect

from bench.fanout_client import RawWatchers
from runtime.database import Database
from runtime.functions import load_functions
from runtime.functions.executor import Executor
from runtime.store.sqlite import SqliteStore
from runtime.sync.hub import SyncHub
from runtime.sync.wire_text import message_text
from tests.support.devserver import start_dev_server

APP = Path(__file__).resolve().parent.parent / "tests" / "integration" / "apps" / "chat"


def figure(name: str, value: float, unit: str) -> None:
    print(f"figure {name} {value:.4g} {unit}", flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---- in-process: invalidation cost ------------------------------------------------


def stepped_hub(name: str, tmp: Path) -> tuple[SqliteStore, Executor, SyncHub]:
    """The chat app on a fresh SQLite file and a hub with no loop thread:
    the bench steps it by hand."""
    store = SqliteStore(str(tmp / f"{name}.sqlite3"))
    registry = load_functions(APP, namespace=f"_bench_{name}")
    db = Database(store)
    db.set_schema(registry.schema)
    executor = Executor(db, registry)
    hub = SyncHub(db, executor, store.snapshot)
    with store.snapshot() as snap:
        hub._position, hub._ts = snap.position, snap.ts
    return store, executor, hub


def invalidation_us(subscriptions: int, writes: int, tmp: Path) -> float:
    store, executor, hub = stepped_hub(f"inv{subscriptions}", tmp)
    per_conn = 1000
    for c in range(0, subscriptions, per_conn):
        conn = hub.connect(lambda m: None, lambda r: None)
        n = min(per_conn, subscriptions - c)
        mods = [
            {
                "type": "Add",
                "queryId": i,
                "udfPath": "messages:list",
                "args": [{"channel": f"c{c + i}"}],
            }
            for i in range(n)
        ]
        hub.receive(
            conn,
            json.dumps(
                {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": mods}
            ),
        )
    hub.step()  # runs every subscription once
    runs = hub.runs
    samples = []
    for i in range(writes):
        executor.call("messages:send", {"channel": "untouched", "body": str(i)})
        start = time.perf_counter()
        hub.step()
        samples.append(time.perf_counter() - start)
    assert hub.runs == runs, "a write nobody reads re-ran queries"
    store.close()
    return statistics.median(samples) * 1e6


def hub_push_us(connections: int, writes: int, tmp: Path) -> float:
    store, executor, hub = stepped_hub(f"push{connections}", tmp)
    sent: list[str] = []
    for c in range(connections):
        conn = hub.connect(lambda m: sent.append(message_text(m)), lambda r: None)
        hub.receive(
            conn, json.dumps({"type": "Connect", "sessionId": f"p{c}", "connectionCount": 0})
        )
        add = {
            "type": "Add",
            "queryId": 0,
            "udfPath": "messages:list",
            "args": [{"channel": "fan"}],
        }
        hub.receive(conn, json.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                                      "modifications": [add]}))  # fmt: skip
    hub.step()
    samples = []
    for i in range(writes):
        executor.call("messages:send", {"channel": "fan", "body": str(i)})
        sent.clear()
        start = time.perf_counter()
        hub.step()
        samples.append(time.perf_counter() - start)
        assert len(sent) == connections, "every watcher gets the write"
    store.close()
    return statistics.median(samples) * 1e6


def send_floor_ms(sockets: int, repeats: int) -> float:
    frame = b"\x81\x7e\x00\xc8" + b"x" * 200  # a 200-byte text frame, as the server sends
    with socket.create_server(("127.0.0.1", 0)) as server:
        pairs = []
        for _ in range(sockets):
            client = socket.create_connection(server.getsockname())
            accepted, _ = server.accept()
            accepted.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.setblocking(False)
            pairs.append((client, accepted))
        selector = selectors.DefaultSelector()
        for client, _ in pairs:
            selector.register(client, selectors.EVENT_READ)
        samples = []
        try:
            for _ in range(repeats):
                done: list[float] = []

                def read_all(done: list[float] = done) -> None:
                    got = 0
                    while got < sockets:
                        for key, _ in selector.select(5):
                            key.fileobj.recv(65536)  # type: ignore[union-attr]
                            got += 1
                    done.append(time.perf_counter())

                reader = threading.Thread(target=read_all)
                reader.start()
                time.sleep(0.02)
                start = time.perf_counter()
                for _, accepted in pairs:
                    accepted.send(frame)
                reader.join(30)
                samples.append(done[0] - start)
        finally:
            selector.close()
            for client, accepted in pairs:
                client.close()
                accepted.close()
    return statistics.median(samples) * 1e3


# ---- over WebSockets -------------------------------------------------------------------


class Watcher:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str, channel: str, session: str) -> Watcher:
        ws = await connect(url, max_size=None, open_timeout=30)
        await ws.send(json.dumps({"type": "Connect", "sessionId": session, "connectionCount": 0}))
        await ws.send(
            json.dumps(
                {
                    "type": "ModifyQuerySet",
                    "baseVersion": 0,
                    "newVersion": 1,
                    "modifications": [
                        {
                            "type": "Add",
                            "queryId": 0,
                            "udfPath": "messages:latest",
                            "args": [{"channel": channel, "n": 1.0}],
                        }
                    ],
                }
            )
        )
        watcher = cls(ws)
        await watcher.until(lambda v: True)
        return watcher

    async def until(self, accept: Any) -> float:
        """Wait for a Transition whose query value `accept`s; its arrival time."""
        while True:
            msg = json.loads(await self.ws.recv())
            if msg["type"] != "Transition":
                continue
            for mod in msg["modifications"]:
                if mod.get("type") == "QueryUpdated" and accept(mod["value"]):
                    return time.perf_counter()


class Writer:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.request = 0

    async def send(self, channel: str, body: str) -> float:
        self.request += 1
        start = time.perf_counter()
        await self.ws.send(
            json.dumps(
                {
                    "type": "Mutation",
                    "requestId": self.request,
                    "udfPath": "messages:send",
                    "args": [{"channel": channel, "body": body}],
                }
            )
        )
        return start


async def drain(ws: ClientConnection) -> None:
    try:
        async for _ in ws:
            pass
    except Exception:
        return


async def push_latency(url: str, clients: int, writes: int) -> list[float]:
    watchers = [
        await Watcher.open(url, f"p{clients}-{i}", f"w{clients}-{i}") for i in range(clients)
    ]
    writer_ws = await connect(url, open_timeout=30)
    await writer_ws.send(
        json.dumps({"type": "Connect", "sessionId": f"writer{clients}", "connectionCount": 0})
    )
    writer = Writer(writer_ws)
    drainer = asyncio.create_task(drain(writer_ws))
    samples = []
    for i in range(writes):
        target = watchers[i % clients]
        body = f"m{i}"
        start = await writer.send(f"p{clients}-{i % clients}", body)
        arrived = await target.until(lambda v, b=body: v == [b])
        samples.append(arrived - start)
    drainer.cancel()
    for w in watchers:
        await w.ws.close()
    await writer_ws.close()
    return samples


async def fanout(url: str, clients: int, repeats: int) -> list[float]:
    watchers = [await Watcher.open(url, "fan", f"f{i}") for i in range(clients)]
    writer_ws = await connect(url, open_timeout=30)
    await writer_ws.send(
        json.dumps({"type": "Connect", "sessionId": "fan-writer", "connectionCount": 0})
    )
    writer = Writer(writer_ws)
    drainer = asyncio.create_task(drain(writer_ws))
    samples = []
    for i in range(repeats):
        body = f"fan{i}"
        start = await writer.send("fan", body)
        arrivals = await asyncio.gather(*(w.until(lambda v, b=body: v == [b]) for w in watchers))
        samples.append(max(arrivals) - start)
    drainer.cancel()
    for w in watchers:
        await w.ws.close()
    await writer_ws.close()
    return samples


def fanout_raw(url: str, clients: int, repeats: int) -> list[float]:
    """`fanout` with clients that cost next to nothing (bench/fanout_client.py):
    the write is sent from one more raw client, timed to the last arrival."""
    watchers = RawWatchers(url, clients, "messages:latest", {"channel": "rawfan", "n": 1.0})
    writer = RawWatchers(url, 1, "messages:latest", {"channel": "rawfan-writer", "n": 1.0})
    samples = []
    try:
        for i in range(repeats):
            body = f"rawfan-{i}"
            mutation = {
                "type": "Mutation",
                "requestId": i + 1,
                "udfPath": "messages:send",
                "args": [{"channel": "rawfan", "body": body}],
            }
            start = time.perf_counter()
            writer.send(json.dumps(mutation))
            last = watchers.wait_for(f'"{body}"'.encode())
            samples.append(last - start)
            time.sleep(0.05)  # let the writer's response and the pushes settle
    finally:
        watchers.close()
        writer.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    opts, _ = parser.parse_known_args()  # BENCH_ARGS is shared with the other benches
    writes = 30 if opts.quick else 200
    many = 200 if opts.quick else 1000
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        small = invalidation_us(100, writes, tmp)
        large = invalidation_us(10_000, writes, tmp)
        figure("invalidation_100_us", small, "us")
        figure("invalidation_10000_us", large, "us")
        figure("invalidation_ratio", large / small, "x")
        figure("hub_push_1000_us", hub_push_us(1000, 10 if opts.quick else 30, tmp), "us")
        figure("send_floor_1000_ms", send_floor_ms(1000, 10 if opts.quick else 30), "ms")
        server = start_dev_server(APP, tmp / "data")
        try:
            url = server.url.replace("http://", "ws://") + "/api/sync"
            one = asyncio.run(push_latency(url, 1, writes))
            figure("push_1_p50_ms", statistics.median(one) * 1e3, "ms")
            figure("push_1_p99_ms", percentile(one, 0.99) * 1e3, "ms")
            lots = asyncio.run(push_latency(url, many, writes))
            figure(f"push_{many}_p50_ms", statistics.median(lots) * 1e3, "ms")
            figure(f"push_{many}_p99_ms", percentile(lots, 0.99) * 1e3, "ms")
            fan = asyncio.run(fanout(url, many, 5 if opts.quick else 20))
            figure(f"fanout_{many}_ms", statistics.median(fan) * 1e3, "ms")
            raw = fanout_raw(url, many, 5 if opts.quick else 20)
            figure(f"fanout_{many}_raw_clients_ms", statistics.median(raw) * 1e3, "ms")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
