"""Full-text search on the embedded engine (issue 17's goals), through the
database core as the dev server runs it: a SqliteStore in a temp file (WAL),
search entries written by the store in the same commit as the documents, FTS5
proposing candidates, the core re-reading them and recording the read set.

The corpus: 100,000 short messages (5-15 words) drawn from a 20,000-word
vocabulary with a Zipf distribution (the word of rank r has weight 1/r: the
commonest words are in most messages, most words in a handful), in 20
channels, inserted 500 per mutation with the index in place (as an app fills
it). The same seed gives the same corpus and the same searches.

Figures (medians; one run):
- search_load_docs_s: documents inserted per second while loading;
- search_two_term_p50_ms / _p95_ms: `q.search("body", "<w1> <w2>")`, the
  last term a prefix as users type it, `take(10)`, through `Database.query`;
  the pairs mix common and rare words (goal p50 <= 5 ms);
- search_filtered_p50_ms: the same with `.eq("channel", ...)`;
- search_paginate_p50_ms: the first page of 20 (`paginate`);
- insert_with_search_p50_us / insert_without_search_p50_us /
  search_insert_overhead_ratio: one-document mutations into `messages` (with
  the search index) and into `plain` (the same fields, no index), alternated
  on the loaded store so drift cancels (goal ratio <= 1.5); the same as
  means (_mean_us, search_insert_overhead_mean_ratio: FTS5's segment merges
  land on some commits only);
- search_build_seconds: `Database.set_schema` adding a second search index
  on the stored documents (the schema push's build).

- harness_search_lag_p50_ms / _p95_ms: on the local AWS harness (DynamoDB
  Local, its stream poller running the stream Lambda, which feeds the local
  OpenSearch server), from a mutation's POST inserting a message with a new
  word to the first HTTP search for that word that finds it.

Run: `python bench/search.py [--quick] [--no-harness]` (--quick: 10,000
documents, fewer samples).
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.database import Database, Transaction
from runtime.schema import define_schema, define_table
from runtime.schema.definition import SchemaDefinition
from runtime.store.sqlite import SqliteStore
from runtime.values import v

ROOT = Path(__file__).resolve().parent.parent
SEED = 17
SEARCH_APP = ROOT / "tests" / "integration" / "apps" / "search"
BATCH = 500
CHANNELS = [
    "general", "random", "engineering", "design", "support", "sales", "marketing",
    "ops", "incidents", "releases", "hiring", "announcements", "product", "data",
    "security", "finance", "legal", "social", "music", "books",
]  # fmt: skip


def _words(text: str) -> list[str]:
    return text.split()


# The commonest words of short chat messages, commonest first; the rest of the
# vocabulary is made of syllables (rarer the further down).
COMMON = _words(
    """
the to i a and you it is for that of in on we be this have with can just
so do but not are at my will me if what get know think about it's was up
your there all one out now some today like need an as time from they can't
good new yes no how when go going here meeting deploy fix build release
tomorrow please thanks check team issue update code test review call later
back work done sure email branch server error bug data week see send make
look help question maybe still should could would because after before
again first last next merge ticket client customer review design api login
page users report plan doc notes lunch coffee friday monday weekend night
"""
)
SYLLABLES = _words(
    """
ka ri to mo na se lu vi pe da zo ra ne ki tu ba lo mi fe sa go re ni po
ta ve du la ko si me ru ha jo li be ma te co di fa gu
"""
)


def figure(name: str, value: float, unit: str) -> None:
    print(f"figure {name} {value:.4g} {unit}", flush=True)


def note(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


# ---- the corpus -----------------------------------------------------------------


def vocabulary(size: int, rng: random.Random) -> list[str]:
    """`size` distinct lowercase words, commonest first."""
    words = list(dict.fromkeys(COMMON))
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


class Corpus:
    """Messages and search terms drawn from one Zipf-distributed vocabulary."""

    def __init__(self, seed: int = SEED, size: int = 20_000) -> None:
        self.rng = random.Random(seed)
        self.words = vocabulary(size, self.rng)
        self._cum = list(itertools.accumulate(1.0 / r for r in range(1, size + 1)))

    def word(self) -> str:
        x = self.rng.random() * self._cum[-1]
        return self.words[bisect.bisect_left(self._cum, x)]

    def message(self) -> dict[str, Any]:
        n = self.rng.randint(5, 15)
        return {
            "body": " ".join(self.word() for _ in range(n)),
            "channel": self.rng.choice(CHANNELS),
        }

    def _ranked(self, lo: int, hi: int) -> str:
        return self.words[self.rng.randrange(lo, min(hi, len(self.words)))]

    def search_text(self, i: int) -> str:
        """The i-th search: two terms, the last cut to a prefix of 3 or more letters
        (or whole), cycling through common+rare, rare+common, common+common and
        rare+rare (common: ranks 10-150, in 0.6-6% of messages; rare: ranks
        1,000-20,000)."""
        common = (10, 150)
        rare = (1000, 20_000)
        first, last = [(common, rare), (rare, common), (common, common), (rare, rare)][i % 4]
        w1 = self._ranked(*first)
        w2 = self._ranked(*last)
        cut = self.rng.randint(min(3, len(w2)), len(w2))
        return f"{w1} {w2[:cut]}"


def schema(*, extra_index: bool = False) -> SchemaDefinition:
    fields = {"body": v.string(), "channel": v.string()}
    messages = define_table(fields).search_index(
        "search_body", search_field="body", filter_fields=["channel"]
    )
    if extra_index:
        messages = messages.search_index(
            "search_body_built", search_field="body", filter_fields=["channel"]
        )
    return define_schema({"messages": messages, "plain": define_table(fields)})


# ---- measurements ---------------------------------------------------------------


def samples_ms(fn: Callable[[int], Any], n: int, warmup: int = 10) -> list[float]:
    for i in range(warmup):
        fn(-1 - i)
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t) * 1000)
    return out


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1]


def load(db: Database, corpus: Corpus, n: int) -> float:
    """Insert n messages, BATCH per mutation; documents per second."""

    def batches() -> Iterator[list[dict[str, Any]]]:
        for start in range(0, n, BATCH):
            yield [corpus.message() for _ in range(min(BATCH, n - start))]

    t0 = time.perf_counter()
    done = 0
    for docs in batches():

        def insert(tx: Transaction, docs: list[dict[str, Any]] = docs) -> None:
            for doc in docs:
                tx.insert("messages", doc)

        db.mutation(insert)
        done += len(docs)
        if done % 10_000 == 0 or done == n:
            note(f"loaded {done:,} of {n:,} messages ({time.perf_counter() - t0:.1f} s)")
    return n / (time.perf_counter() - t0)


def bench_searches(db: Database, corpus: Corpus, n: int) -> None:
    texts = [corpus.search_text(i) for i in range(n)]
    channels = [corpus.rng.choice(CHANNELS) for _ in range(n)]
    warm = [corpus.search_text(i) for i in range(10)]

    def text(i: int) -> str:
        return texts[i] if i >= 0 else warm[-1 - i]

    found = []

    def two_term(i: int) -> None:
        rows = db.query(
            lambda tx: (
                tx.query("messages")
                .with_search_index("search_body", lambda q: q.search("body", text(i)))
                .take(10)
            )
        ).value
        found.append(len(rows))

    def filtered(i: int) -> None:
        db.query(
            lambda tx: (
                tx.query("messages")
                .with_search_index(
                    "search_body",
                    lambda q: q.search("body", text(i)).eq("channel", channels[i]),
                )
                .take(10)
            )
        )

    def paginate(i: int) -> None:
        page = db.query(
            lambda tx: (
                tx.query("messages")
                .with_search_index("search_body", lambda q: q.search("body", text(i)))
                .paginate({"numItems": 20, "cursor": None})
            )
        ).value
        assert len(page["page"]) <= 20

    xs = samples_ms(two_term, n)
    assert statistics.median(found) > 0, "the searches find nothing: the corpus is wrong"
    figure("search_two_term_p50_ms", statistics.median(xs), "ms")
    figure("search_two_term_p95_ms", p95(xs), "ms")
    for kind in range(4):  # which pairs cost what (common+rare, rare+common, ...)
        part = xs[kind::4]
        label = ["common_rare", "rare_common", "common_common", "rare_rare"][kind]
        note(f"{label}: p50 {statistics.median(part):.2f} ms, max {max(part):.2f} ms")
    xs = samples_ms(filtered, n)
    figure("search_filtered_p50_ms", statistics.median(xs), "ms")
    figure("search_filtered_p95_ms", p95(xs), "ms")
    xs = samples_ms(paginate, n)
    figure("search_paginate_p50_ms", statistics.median(xs), "ms")


def bench_insert_overhead(db: Database, corpus: Corpus, n: int) -> None:
    with_index: list[float] = []
    without: list[float] = []
    for i in range(n + 20):
        doc = corpus.message()
        for table, out in (("messages", with_index), ("plain", without))[:: 1 if i % 2 else -1]:

            def insert(tx: Transaction, table: str = table, doc: dict[str, Any] = doc) -> None:
                tx.insert(table, doc)

            t = time.perf_counter()
            db.mutation(insert)
            if i >= 20:  # warm-up
                out.append((time.perf_counter() - t) * 1e6)
    a, b = statistics.median(with_index), statistics.median(without)
    figure("insert_with_search_p50_us", a, "us")
    figure("insert_without_search_p50_us", b, "us")
    figure("search_insert_overhead_ratio", a / b, "x")
    # FTS5 merges its segments every few commits: the mean shows what the p50 hides.
    a, b = statistics.fmean(with_index), statistics.fmean(without)
    figure("insert_with_search_mean_us", a, "us")
    figure("insert_without_search_mean_us", b, "us")
    figure("search_insert_overhead_mean_ratio", a / b, "x")


def bench_build(db: Database, n: int) -> None:
    step = max(1, n // 5)
    last = [0]

    def progress(table: str, index: str, done: int) -> None:
        if done - last[0] >= step:
            last[0] = done
            note(f"building {table}.{index}: {done:,} documents")

    t0 = time.perf_counter()
    db.set_schema(schema(extra_index=True), progress)
    figure("search_build_seconds", time.perf_counter() - t0, "s")
    figure("search_build_documents", n, "docs")


# ---- the AWS harness ------------------------------------------------------------


def harness_lag(n: int) -> list[float]:
    """Write-to-searchable on the local AWS harness (DynamoDB Local, its stream
    poller running the stream Lambda, which feeds LocalOpenSearch): from a
    mutation's POST to the first search over HTTP that finds its document,
    searching again as soon as an answer comes back. Milliseconds."""
    import requests

    from tests.support.awslocal import start_aws_local
    from tests.support.dynamodb_local import running_dynamodb_local

    with tempfile.TemporaryDirectory() as d, running_dynamodb_local() as endpoint:
        harness = start_aws_local(SEARCH_APP, Path(d) / "aws", table="benchsearch",
                                  dynamodb_endpoint=endpoint)  # fmt: skip
        session = requests.Session()

        def call(kind: str, path: str, args: dict[str, Any]) -> Any:
            r = session.post(
                f"{harness.url}/api/{kind}", json={"path": path, "args": args}, timeout=30
            )
            body = r.json()
            assert body["status"] == "success", r.text
            return body["value"]

        out = []
        try:
            for i in range(n + 3):
                word = f"lagprobe{i}x{uuid.uuid4().hex[:6]}"
                t0 = time.perf_counter()
                call("mutation", "messages:send", {"body": f"{word} arrived", "channel": "lag"})
                deadline = t0 + 60
                while not call("query", "messages:search", {"text": word}):
                    assert time.perf_counter() < deadline, f"{word} never became searchable"
                out.append((time.perf_counter() - t0) * 1000)
        finally:
            harness.stop()
    return out[3:]  # warm-up


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-harness", action="store_true", help="skip the AWS harness' lag")
    args, _ = parser.parse_known_args()
    docs = 10_000 if args.quick else 100_000
    searches = 100 if args.quick else 400
    inserts = 100 if args.quick else 500
    with tempfile.TemporaryDirectory() as d:
        store = SqliteStore(os.path.join(d, "db.sqlite3"))
        db = Database(store)
        db.set_schema(schema())
        corpus = Corpus()
        figure("search_load_docs_s", load(db, corpus, docs), "docs/s")
        figure("search_documents", docs, "docs")
        bench_searches(db, corpus, searches)
        bench_insert_overhead(db, corpus, inserts)
        bench_build(db, docs + inserts + 20)
        store.close()
    if not args.no_harness:
        note("the AWS harness: write-to-searchable")
        lags = harness_lag(10 if args.quick else 40)
        figure("harness_search_lag_p50_ms", statistics.median(lags), "ms")
        figure("harness_search_lag_p95_ms", p95(lags), "ms")


if __name__ == "__main__":
    main()
