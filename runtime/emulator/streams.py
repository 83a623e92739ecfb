"""The event source mapping, locally: a thread that reads a table's stream
(DynamoDB Local's) and invokes the stream Lambda with batches, as Lambda does.

- Shards are read parents first (a child only once its parent is read to
  its end), each shard's batches in order, one at a time. At start the open
  shards are read from LATEST (or every shard from TRIM_HORIZON, when asked);
  shards that appear later, from their beginning.
- Records are given as Lambda gives them: `ApproximateCreationDateTime` in
  epoch seconds, binary values (`B`, `BS`) as base64 text.
- Partial batch responses: a `batchItemFailures` answer checkpoints the
  records before the earliest failed one and re-delivers from it; an
  exception (or a failure naming no record of the batch) retries the whole
  batch. Retries back off exponentially; after `max_retries` retries of
  the same record the rest of the batch is logged and skipped (Lambda's
  MaximumRetryAttempts; its on-failure destination is not emulated).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from runtime.aws.stream_records import to_lambda_event

from .functions import REGION, LambdaFunction

__all__ = ["StreamPoller"]

log = logging.getLogger("runtime.emulator")

SHARD_LIST_SECONDS = 1.0
"""How often the shard list is re-read (new shards appear as old ones close)."""


def _code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


@dataclass(eq=False)
class _Shard:
    id: str
    parent: str | None
    iterator_type: Literal["LATEST", "TRIM_HORIZON"]
    iterator: str | None = None
    last: str | None = None
    """The sequence number of the last record delivered (or skipped)."""
    done: bool = False


class StreamPoller:
    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        function: LambdaFunction,
        *,
        batch_size: int = 100,
        start: Literal["LATEST", "TRIM_HORIZON"] = "LATEST",
        poll_interval: float = 0.05,
        max_retries: int = 3,
        backoff: float = 0.1,
        max_backoff: float = 2.0,
        region: str = REGION,
        keep: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> None:
        """`keep`: the event source mapping's filter (records it drops are
        acknowledged without an invocation); None delivers every record."""
        if not 1 <= batch_size <= 1000:
            raise ValueError(f"batch_size must be 1 to 1000 (GetRecords' limit), not {batch_size}")
        if start not in ("LATEST", "TRIM_HORIZON"):
            raise ValueError(f"start must be LATEST or TRIM_HORIZON, not {start!r}")
        self._streams = streams
        self.arn = stream_arn
        self._function = function
        self._keep = keep
        self._batch_size = batch_size
        self._start = start
        self._poll_interval = poll_interval
        self._max_retries = max_retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._region = region
        self._shards: dict[str, _Shard] = {}
        self._listed_at = -SHARD_LIST_SECONDS
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.invocations = 0
        self.skipped = 0

    # ---- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Take the starting positions (records written after this returns
        are delivered), then poll in a thread."""
        if self._thread is not None:
            raise RuntimeError("the stream poller is already started")
        self._list_shards(initial=True)
        self._thread = threading.Thread(target=self._run, name="stream-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        """Stop after the invocation under way, if any."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError(f"the stream poller did not stop within {timeout} s")

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                busy = self._poll_once()
                failures = 0
            except Exception:
                failures += 1
                log.exception("reading the stream %s failed", self.arn)
                busy = False
                self._stop.wait(self._delay(failures))
            if not busy:
                self._stop.wait(self._poll_interval)

    def _delay(self, attempt: int) -> float:
        return float(min(self._max_backoff, self._backoff * 2 ** max(0, attempt - 1)))

    # ---- shards --------------------------------------------------------------------

    def _list_shards(self, *, initial: bool = False) -> None:
        listed: list[Mapping[str, Any]] = []
        start: str | None = None
        while True:
            kw: dict[str, Any] = {"StreamArn": self.arn}
            if start:
                kw["ExclusiveStartShardId"] = start
            desc = self._streams.describe_stream(**kw)["StreamDescription"]
            listed += desc.get("Shards", [])
            start = desc.get("LastEvaluatedShardId")
            if not start:
                break
        self._listed_at = time.monotonic()
        for shard in listed:
            sid = shard["ShardId"]
            if sid in self._shards:
                continue
            closed = "EndingSequenceNumber" in shard.get("SequenceNumberRange", {})
            latest = initial and self._start == "LATEST"
            state = _Shard(sid, shard.get("ParentShardId"), "LATEST" if latest else "TRIM_HORIZON")
            if latest and closed:
                state.done = True  # nothing comes after its LATEST
            elif latest:
                state.iterator = self._iterator(state)
            self._shards[sid] = state
        ids = {s["ShardId"] for s in listed}
        for sid in [sid for sid, s in self._shards.items() if s.done and sid not in ids]:
            del self._shards[sid]  # trimmed from the stream

    def _readable(self) -> list[_Shard]:
        """Shards to read now: not done, and their parent (if still tracked) done."""
        return [
            s
            for s in self._shards.values()
            if not s.done and (s.parent not in self._shards or self._shards[s.parent].done)
        ]

    def _iterator(self, shard: _Shard) -> str | None:
        kw: dict[str, Any] = {"StreamArn": self.arn, "ShardId": shard.id}
        if shard.last is not None:
            kw.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=shard.last)
        else:
            kw["ShardIteratorType"] = shard.iterator_type
        try:
            it: str | None = self._streams.get_shard_iterator(**kw).get("ShardIterator")
        except Exception as e:
            if _code(e) == "ResourceNotFoundException":
                shard.done = True  # trimmed meanwhile
                return None
            if _code(e) == "TrimmedDataAccessException":
                log.warning("shard %s: records after %s were trimmed", shard.id, shard.last)
                shard.last, shard.iterator_type = None, "TRIM_HORIZON"
                return self._iterator(shard)
            raise
        return it

    def _poll_once(self) -> bool:
        """Read each readable shard once; whether any record came."""
        if time.monotonic() - self._listed_at >= SHARD_LIST_SECONDS:
            self._list_shards()
        busy = False
        for shard in self._readable():
            if self._stop.is_set():
                break
            if shard.iterator is None:
                shard.iterator = self._iterator(shard)
                if shard.iterator is None:
                    continue
            try:
                page = self._streams.get_records(
                    ShardIterator=shard.iterator, Limit=self._batch_size
                )
            except Exception as e:
                if _code(e) in ("ExpiredIteratorException", "TrimmedDataAccessException"):
                    shard.iterator = None  # taken again after the last record
                    continue
                raise
            records = page.get("Records", [])
            shard.iterator = page.get("NextShardIterator")
            if records:
                busy = True
                kept = [r for r in records if self._keep(r)] if self._keep else records
                if kept:
                    self._deliver(shard, kept)
                if not self._stop.is_set():  # the filtered-out records are done too
                    shard.last = _sequence(records[-1])
            if shard.iterator is None:
                shard.done = True
                self._listed_at = -SHARD_LIST_SECONDS  # look for its children now
        return busy

    # ---- delivery ------------------------------------------------------------------

    def _deliver(self, shard: _Shard, records: list[Mapping[str, Any]]) -> None:
        batch, attempt = records, 0
        while batch:
            self.invocations += 1
            try:
                answer = self._function.invoke(to_lambda_event(batch, self.arn, self._region))
                failed = self._first_failure(batch, answer)
            except Exception:
                log.exception("the stream handler failed on %d records of %s", len(batch), shard.id)
                failed = 0
            if failed is None:
                self.delivered += len(batch)
                shard.last = _sequence(batch[-1])
                return
            if failed > 0:  # checkpoint what succeeded; the failing record's retries start
                self.delivered += failed
                shard.last = _sequence(batch[failed - 1])
                batch, attempt = batch[failed:], 0
            attempt += 1
            if attempt > self._max_retries:
                log.error(
                    "skipping %d records of shard %s (sequence numbers %s to %s) after %d retries",
                    len(batch), shard.id, _sequence(batch[0]), _sequence(batch[-1]),
                    self._max_retries,
                )  # fmt: skip
                self.skipped += len(batch)
                shard.last = _sequence(batch[-1])
                return
            if self._stop.wait(self._delay(attempt)):
                return  # stopping: the records are not acknowledged

    def _first_failure(self, batch: list[Mapping[str, Any]], answer: Any) -> int | None:
        """Index of the earliest failed record per the answer (None: all done)."""
        if not isinstance(answer, Mapping):
            return None
        failures = answer.get("batchItemFailures")
        if not failures:
            return None
        sequences = [_sequence(r) for r in batch]
        found: list[int] = []
        for failure in failures if isinstance(failures, list) else [failures]:
            ident = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
            if not ident or ident not in sequences:
                log.warning(
                    "batchItemFailures names %r, not a sequence number of the batch: "
                    "the whole batch is retried",
                    ident,
                )
                return 0
            found.append(sequences.index(ident))
        return min(found)


def _sequence(record: Mapping[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])
