"""The DynamoDB adapter of the storage port (production; tests run it on moto
and DynamoDB Local).

Table design: one table, made by `create_table` (PAY_PER_REQUEST, stream
NEW_AND_OLD_IMAGES, TTL on `x`).

| attribute | type | meaning |
|-----------|------|---------|
| pk | S, hash key | the port's partition |
| sk | B, range key | b"\\x00" + the port's sort key (key attributes cannot be empty; a constant first byte keeps the order), so port sort keys are at most 1,023 bytes here |
| v | B | the value, or its first chunk; absent when empty |
| n | N | the version (absent item = 0) |
| f | BOOL | present on items written with feed=True |
| ts | N | the commit timestamp (ns) of a feed write |
| vt | N | the commit timestamp (ns) of a range version's last bump |
| c, t | N, B | a chunked value: chunk count and a random 16-byte token |
| x | N | expiry (epoch s, TTL) of a superseded chunk |

Large values: items hold 400 KB, documents up to 1 MiB, so a value over
`VALUE_CHUNK_BYTES` (350,000) is split. The main item holds chunk 0 plus `c`
and `t`; chunk i >= 1 is its own item at (`~chunk:<token hex>`, b"\\x00" + i),
written by the same transaction (one extra transaction item per chunk: the
core counts 1 + (len(value) - 1) // 350,000 items for a Put). Chunk items are
never rewritten (a new value gets a new token), so a reader that has the main
item always gets the matching chunks, and no core partition (`d:`, `i:`,
`v:`, `f:`) can hold one, so scans never meet them. Overwrites and deletes:
every value write carries the condition `attribute_not_exists(c)` and asks for
the old item on failure (ReturnValuesOnConditionCheckFailure=ALL_OLD). Over a
chunked value it fails; if its version was the expected one, the adapter
retries with the condition `t = <old token>` instead and, once committed,
marks the old chunks with `x` = now + 2 days rather than deleting them, so the
change feed can still rebuild old values for the stream's 24 hours; TTL then
removes them. Writes over small values (all but a few) pay nothing for this.
A crash between the commit and the marking leaves chunks without `x` (unread
garbage; the only leak).

Transactions: every `transact` is one `TransactWriteItems`, entry i for op i
(the extra chunks after them), with a fresh `ClientRequestToken`, so botocore's
retries of a call whose answer was lost are idempotent. This is also why a
single op is not sent as a plain conditional PutItem: a retried conditional
put that had in fact applied would fail its condition and be reported as a
conflict of a commit that happened. Per op:
- Check: ConditionCheck, `#n = :v`, or `attribute_not_exists(pk)` for 0.
- Put with expect: Put of the whole item with n = expect + 1 and condition
  `#n = :expect AND attribute_not_exists(c)` (`attribute_not_exists(pk)` for 0).
- Put without expect: Update `SET v, f, ts, c, t ... ADD n 1 REMOVE` (the
  attributes it does not set), so the version grows from whatever it was;
  condition `attribute_not_exists(c)`.
- Delete: Delete, condition as for a Put (none but the chunk guard without expect).
- Bump: Update `ADD n 1` (creates the item, value b"", when absent), with the
  expected version as condition if any.
Every condition above also requires `attribute_not_exists(lk)` (Bump without
expect included): no large commit holds a lock on the item (see below).
On `TransactionCanceledException`: ConditionalCheckFailed at index i names
the key of op i (`TransactionConflict(keys)`); with no failed condition,
TransactionConflict, throttling and capacity reasons raise
`TransactionConflict([])` (transient: the core re-runs the mutation), other
reasons (ValidationError...) a `StoreError`. `TransactionInProgressException`
(a retry racing its first attempt) is retried with the same token.

Commits past 100 items (TRANSACTION_ITEMS, counting extra chunks) go through
`dynamodb_large.py`: a commit record, locks (`lk`, `li`, `lts`) under each
op's condition, then the writes. Every read here (get, scan, versions) and a
small commit that failed on a locked item resolve such locks first (roll a
committed commit forward, abort an expired one); a lock's placeholder on an
absent key reads as absent. `max_transaction_items` (constructor) caps a
commit's items with a StoreError; None lets any size through.

Commit timestamps: a hybrid logical clock per process, ts = max(clock(),
last + 1), where `last` also takes in the timestamp of every item this
process reads. Feed items (documents) and range versions carry the `ts` of
the commit that last wrote them, so a transaction that read another's write
(the document, or the range version a delete or insert bumped) commits with a
larger timestamp, in any process, whatever the clocks say. Strictly
increasing per process. Not covered: reading only the absence of a document
another process deleted (a point read of a gone item carries no timestamp);
that orders by the clocks. A global order would need one item every commit
touches, which DynamoDB serializes.

Validation reads (`versions`) use TransactGetItems, 100 keys a call (2 read
units an item instead of BatchGetItem's 1): see `runtime/database/commit.py`.

Reads are strongly consistent: BatchGetItem (ConsistentRead, 100 keys a call,
UnprocessedKeys re-sent with backoff) and Query (ConsistentRead; `sk < hi`,
`sk >= lo` or `BETWEEN lo AND hi` minus the item at hi; ScanIndexForward for
direction; LastEvaluatedKey followed until `limit` items).

The change feed is the table's stream: see `dynamodb_feed.py`.

PynamoDB vs boto3: the item layout has a PynamoDB model (`item_model`, in
`dynamodb_table.py`, for shells and ops scripts; a test reads the store's
items through it), but the adapter talks to DynamoDB through boto3's
low-level client. PynamoDB 6.1 could express the commits (its TransactWrite
takes a ClientRequestToken, per-op ReturnValuesOnConditionCheckFailure, and
exposes the cancellation reasons), but:
- it binds the table name and the connection to a Model class and opens its
  own botocore client from the class's Meta (host, region, the default
  credential chain), while the store takes an injected client (one per Lambda
  container, botocore's Stubber in tests, DynamoDB Local's credentials) and a
  table name chosen at run time; a class per table works, a shared client
  only through private attributes;
- each op would build a model instance to emit the dict written here
  directly, for conditions on three attributes; measured on DynamoDB Local,
  the same 7-item commit took 9.7 ms through TransactWrite and 8.8 ms through
  this adapter (medians of 300);
- the change feed (DynamoDB Streams) and the TTL switch are outside PynamoDB;
- Lambda cold starts: boto3 is imported on first use and PynamoDB never on
  the request path.

Modules: `dynamodb_items.py` (encoding, the transaction entries, reading a
cancellation; pure), `dynamodb_calls.py` (API calls and their errors),
`dynamodb_feed.py` (the stream), `dynamodb_table.py` (table, model).

The endpoint: with no client passed, boto3 builds one from the environment,
so `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_DYNAMODB` point the store at
DynamoDB Local or LocalStack; nothing here overrides them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runtime.limits import (
    LARGE_COMMIT_DEADLINE_SECONDS,
    LARGE_COMMIT_THREADS,
    TRANSACTION_BYTES,
    TRANSACTION_ITEMS,
    VALUE_CHUNK_BYTES,
)
from runtime.search.port import SearchEngine

from .dynamodb_calls import (
    CHUNK_RETENTION_SECONDS,
    Conflict,
    aws_errors,
    batch_get,
    call,
    conditional_transaction,
    retire_chunks,
    streams_client_for,
    transact_get,
)
from .dynamodb_feed import StreamFeed, record_change
from .dynamodb_items import (
    AttrMap,
    ChunkRef,
    chunk_keys,
    chunk_ref,
    decode_key,
    encode_bound,
    encode_key,
    first_chunk,
    transact_items,
)
from .dynamodb_large import LargeCommits
from .dynamodb_table import create_table, item_model
from .port import (
    Change,
    ChangeBatch,
    CommitResult,
    Item,
    Key,
    Op,
    Put,
    StoreError,
    ensure_one_op_per_key,
    without_search_writes,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

__all__ = ["CHUNK_RETENTION_SECONDS", "DynamoDBStore", "create_table", "item_model"]


class DynamoDBStore:
    """The storage port on one DynamoDB table (see the module docstring)."""

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        streams_client: DynamoDBStreamsClient | None = None,
        max_transaction_items: int | None = None,
        clock: Callable[[], int] = time.time_ns,
        transact_get_keys: int = 100,
        large_commit_deadline: float = LARGE_COMMIT_DEADLINE_SECONDS,
        faults: Callable[[str], None] | None = None,
        large_commit_threads: int = LARGE_COMMIT_THREADS,
    ) -> None:
        session: Any = None
        if client is None:
            import boto3

            # One fresh session for both clients: the same credentials and region.
            # The Streams client is made on the first read of the feed (most
            # Lambdas never read it: a cold start saves a client).
            session = boto3.session.Session()
            client = session.client("dynamodb")

        self._session = session
        self.table = table_name
        self._item_cap = max_transaction_items
        """None: any size (past TRANSACTION_ITEMS through `dynamodb_large.py`);
        a number refuses larger commits with a StoreError."""
        self.max_transaction_items: int | None = max_transaction_items
        """None: the core sends commits of any size (the port's switch)."""
        self.faults = faults
        """Fault injection for tests: called at the large protocol's named points."""
        self.search: SearchEngine | None = None
        """The search engine the shell attaches (OpenSearch, fed from the stream);
        None: searches fail with a message saying how to configure one."""
        self._transact_get_keys = transact_get_keys
        """Keys per TransactGetItems: AWS takes 100 (moto still 25)."""
        self._client: Any = client
        self._streams: Any = streams_client
        self._clock = clock
        self._last_ts = 0
        self._lock = threading.Lock()
        self._stream_arn: str | None = None
        self._feed: StreamFeed | None = None
        self.large = LargeCommits(
            client,
            table_name,
            deadline_seconds=large_commit_deadline,
            threads=large_commit_threads,
        )
        """The protocol of commits past TRANSACTION_ITEMS, and the lock
        resolution every read goes through."""

    @property
    def client(self) -> Any:
        """The boto3 DynamoDB client the store uses."""
        return self._client

    # ---- reads -----------------------------------------------------------------

    def _batch_get(self, keys: Sequence[AttrMap]) -> list[AttrMap]:
        return batch_get(self._client, self.table, keys)

    def _read(self, keys: Sequence[AttrMap]) -> list[AttrMap]:
        """Main items, locks of large commits resolved (absent ones left out)."""
        raws = self._batch_get(keys)
        if any("lk" in r for r in raws):
            return [r for r in self.large.resolve(raws) if r is not None]
        return raws

    def _read_chunks(self, ref: ChunkRef, first: bytes) -> bytes:
        """A chunked value from the stream (chunks live >= 2 days past replacement)."""
        parts = self._chunks({ref})
        if ref not in parts:
            raise StoreError(f"chunks {ref.token.hex()} of a value in the change feed are gone")
        return first + parts[ref]

    def _chunks(self, refs: set[ChunkRef]) -> dict[ChunkRef, bytes]:
        """The chunks past the first of each value, joined; a value missing any
        chunk is left out."""
        raws = self._batch_get([k for ref in refs for k in chunk_keys(ref)])
        got = {(r["pk"]["S"], bytes(r["sk"]["B"])): first_chunk(r) for r in raws}
        out: dict[ChunkRef, bytes] = {}
        for ref in refs:
            parts = [got.get((k["pk"]["S"], k["sk"]["B"])) for k in chunk_keys(ref)]
            if all(p is not None for p in parts):
                out[ref] = b"".join(p for p in parts if p is not None)
        return out

    def _items(self, raws: Sequence[AttrMap]) -> dict[Key, Item]:
        """Items from raw main items, chunked values joined. A chunk gone
        (expired after its value was replaced) means the main item moved on:
        read it again."""
        out: dict[Key, Item] = {}
        self._observe(raws)
        for _ in range(10):
            chunked: dict[Key, tuple[AttrMap, ChunkRef]] = {}
            for raw in raws:
                key, ref = decode_key(raw), chunk_ref(raw)
                if ref is None:
                    out[key] = Item(key, first_chunk(raw), int(raw["n"]["N"]))
                else:
                    chunked[key] = (raw, ref)
            if not chunked:
                return out
            joined = self._chunks({ref for _, ref in chunked.values()})
            stale = []
            for key, (raw, ref) in chunked.items():
                if ref in joined:
                    out[key] = Item(key, first_chunk(raw) + joined[ref], int(raw["n"]["N"]))
                else:
                    stale.append(key)
            raws = self._read([encode_key(k) for k in stale])
        raise StoreError("a chunked value kept changing while it was read")

    def versions(self, keys: Sequence[Key]) -> list[int]:
        unique = list(dict.fromkeys(keys))
        found: dict[Key, int] = {}
        step = self._transact_get_keys
        for i in range(0, len(unique), step):
            part = unique[i : i + step]
            keys_part = [encode_key(k) for k in part]
            raws = transact_get(self._client, self.table, keys_part, ("n", "ts", "vt", "lk", "li"))
            self._observe(raw for raw in raws if raw is not None)
            locked = [
                {**raw, **key}
                for raw, key in zip(raws, keys_part, strict=True)
                if raw is not None and "lk" in raw
            ]
            # A committed lock is rolled forward and its key re-read: a run that
            # saw the old value then fails here (see `dynamodb_large.py`).
            resolved = {decode_key(r): r for r in self.large.resolve(locked) if r is not None}
            for k, raw in zip(part, raws, strict=True):
                if raw is not None and "lk" in raw:
                    raw = resolved.get(k)
                found[k] = int(raw["n"]["N"]) if raw is not None else 0
        return [found[k] for k in keys]

    def _observe(self, raws: Iterable[Mapping[str, Any]]) -> None:
        """Fold the commit timestamps of items read into this process's clock
        (see "Commit timestamps" above)."""
        seen = max((int(r[a]["N"]) for r in raws for a in ("ts", "vt") if a in r), default=0)
        if seen > self._last_ts:
            with self._lock:
                self._last_ts = max(self._last_ts, seen)

    def get(self, keys: Sequence[Key]) -> list[Item | None]:
        if not keys:
            return []
        unique = list(dict.fromkeys(keys))
        found = self._items(self._read([encode_key(k) for k in unique]))
        return [found.get(k) for k in keys]

    def scan(
        self,
        partition: str,
        lo: bytes = b"",
        hi: bytes | None = None,
        *,
        reverse: bool = False,
        limit: int = 100,
    ) -> list[Item]:
        if limit <= 0 or (hi is not None and hi <= lo):
            return []
        values: AttrMap = {":p": {"S": partition}}
        if hi is None:
            cond = "pk = :p AND sk >= :lo"
            values[":lo"] = {"B": encode_bound(lo)}
        elif not lo:
            cond = "pk = :p AND sk <= :hi"  # every stored sk is >= b"\x00" = encode(b"")
            values[":hi"] = {"B": encode_bound(hi)}
        else:
            cond = "pk = :p AND sk BETWEEN :lo AND :hi"
            values[":lo"] = {"B": encode_bound(lo)}
            values[":hi"] = {"B": encode_bound(hi)}
        raws: list[AttrMap] = []
        start: AttrMap | None = None
        while len(raws) < limit:
            kw: AttrMap = {
                "TableName": self.table,
                "KeyConditionExpression": cond,
                "ExpressionAttributeValues": values,
                "ScanIndexForward": not reverse,
                "ConsistentRead": True,
                # +1: the inclusive bound may hold one item outside the port's range.
                "Limit": limit - len(raws) + 1,
            }
            if start is not None:
                kw["ExclusiveStartKey"] = start
            resp = call(self.table, "Query", self._client.query, **kw)
            page: list[AttrMap] = []
            for raw in resp.get("Items", []):
                sort = decode_key(raw)[1]
                if sort >= lo and (hi is None or sort < hi):
                    page.append(raw)
            if any("lk" in r for r in page):
                # Placeholders of inserts in progress are absent: read on past them.
                page = [r for r in self.large.resolve(page) if r is not None]
            raws.extend(page)
            start = resp.get("LastEvaluatedKey")
            if start is None:
                break
        raws = raws[:limit]
        items = self._items(raws)
        return [items[k] for k in map(decode_key, raws) if k in items]

    # ---- transactions ------------------------------------------------------------

    def _next_ts(self) -> int:
        with self._lock:
            self._last_ts = max(self._clock(), self._last_ts + 1)
            return self._last_ts

    def transact(self, ops: Sequence[Op]) -> CommitResult:
        ensure_one_op_per_key(ops)
        # Search entries reach OpenSearch from the stream, not in the commit.
        ops = without_search_writes(ops)
        ts = self._next_ts()
        if not ops:
            return CommitResult(ts)
        count = _item_count(ops)
        if self._item_cap is not None and count > self._item_cap:
            raise StoreError(
                f"a transaction of {count} items ({len(ops)} ops and "
                f"{count - len(ops)} extra chunks of large values); this store takes at "
                f"most {self._item_cap}"
            )
        if count > TRANSACTION_ITEMS or _request_bytes(ops) > TRANSACTION_BYTES:
            self.large.commit(ops, ts, self.faults)
            return CommitResult(ts)

        def build(pinned: Mapping[Key, ChunkRef]) -> list[AttrMap]:
            return transact_items(self.table, ops, ts, pinned)

        try:
            pinned = conditional_transaction(self._client, self.table, ops, build)
        except Conflict as e:
            if e.locked:  # so that the re-run can pass
                self.large.resolve_locked(e.locked)
            raise
        retire_chunks(self._client, self.table, pinned.values())
        return CommitResult(ts)

    # ---- change feed ---------------------------------------------------------------

    def _arn(self) -> str:
        if self._stream_arn is None:
            desc = call(
                self.table, "DescribeTable", self._client.describe_table, TableName=self.table
            )
            arn = desc["Table"].get("LatestStreamArn")
            if not arn:
                raise StoreError(
                    f"DynamoDB table {self.table} has no stream: create it with "
                    "runtime.store.dynamodb.create_table"
                )
            self._stream_arn = str(arn)
        return self._stream_arn

    def read_changes(self, after: str | None = None, limit: int = 1000) -> ChangeBatch:
        with self._lock:
            if self._feed is None:
                streams = self._streams or streams_client_for(self._client, self._session)
                self._feed = StreamFeed(streams, self._arn, self._read_chunks)
            feed = self._feed
        try:
            return feed.read(after, limit)
        except aws_errors() as e:
            raise StoreError(
                f"reading the stream of DynamoDB table {self.table} failed: {e}"
            ) from e

    def change_of(self, record: Mapping[str, Any]) -> Change | None:
        """The change a stream record carries (boto3's shape; the stream
        Lambda converts its event's records first), None if not a feed write."""
        return record_change(record, self._read_chunks)

    def close(self) -> None:
        """Nothing to release: boto3 clients close with the process."""


def _request_bytes(ops: Sequence[Op]) -> int:
    """An upper estimate of one TransactWriteItems' size for `ops` (values,
    keys, and a generous allowance for attribute names and expressions):
    past DynamoDB's 4 MB a call, the large path splits the commit."""
    return sum(
        len(op.key[0]) + len(op.key[1]) + 300 + (len(op.value) if isinstance(op, Put) else 0)
        for op in ops
    )


def _item_count(ops: Sequence[Op]) -> int:
    """TransactWriteItems items of `ops`: one each, plus the extra chunks of
    large values."""
    return len(ops) + sum(
        (len(op.value) - 1) // VALUE_CHUNK_BYTES for op in ops if isinstance(op, Put) and op.value
    )
