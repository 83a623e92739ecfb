"""The embedded search engine: SQLite FTS5 tables on the store's own connection.

It runs on a connection it is given and never commits, so the SQLite store can
write a document and its search entries in one transaction (a search never sees
a document its table does not hold, or misses one it does).

Layout: one FTS5 table per search index (BM25's corpus statistics are the
index's own), holding the document's words, as `runtime.search.text.tokenize`
found them joined by spaces, under FTS5's `ascii` tokenizer, which splits only
on ASCII punctuation and space and so keeps our words exactly: both engines
match on the one tokenizer. Its `doc` and `ct` columns are UNINDEXED, so a
document's length in `bm25()` is its word count. Filter values live in the
plain table `search_filters` as canonical tokens (`filter_token`), one row per
(index, filter field, token, document): keeping them out of the FTS5 table
keeps them out of BM25's document lengths. `search_indexes` counts each index's
documents and words for `stats`; `search_docs` maps a document key to its FTS5
row and its filter tokens, so an update or removal finds them.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext

from runtime.limits import SEARCH_RESULTS, check_limit
from runtime.search import bm25
from runtime.search.bm25 import CorpusStats
from runtime.search.port import Candidate, SearchEntry
from runtime.search.text import SearchTerms, check_filter_count, filter_token, tokenize
from runtime.values.model import Value

__all__ = ["SqliteSearch"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS search_indexes ("
    " ix TEXT PRIMARY KEY, fts TEXT NOT NULL, docs INTEGER NOT NULL, words INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS search_docs ("
    " ix TEXT NOT NULL, doc TEXT NOT NULL, rid INTEGER NOT NULL, words INTEGER NOT NULL,"
    " filt TEXT NOT NULL, PRIMARY KEY (ix, doc)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS search_filters ("
    " ix TEXT NOT NULL, field INTEGER NOT NULL, token TEXT NOT NULL, rid INTEGER NOT NULL,"
    " PRIMARY KEY (ix, field, token, rid)) WITHOUT ROWID",
)


_NEW_DOC = "INSERT INTO search_docs VALUES (?, ?, ?, ?, ?) ON CONFLICT (ix, doc) DO NOTHING"


def _fts_name(index_key: str) -> str:
    # A name SQLite accepts whatever the index key holds; the key itself is in
    # search_indexes.
    return "search_" + hashlib.sha1(index_key.encode("utf-8")).hexdigest()[:24]


def _phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def match_expression(terms: SearchTerms) -> str:
    """The FTS5 query: any whole term, or any word the last term starts."""
    if terms.prefix is None:
        raise ValueError("an empty search matches nothing; check SearchTerms.empty first")
    parts = [_phrase(w) for w in terms.whole]
    parts.append(_phrase(terms.prefix) + " *")
    return " OR ".join(parts)


def candidates_sql(fts: str, filter_count: int) -> str:
    """The candidates query: the MATCH, one `+rowid IN (...)` per filter, BM25 then
    newest first. Parameters: the MATCH expression, (index, field, token) per
    filter, `limit - 1`, `limit`.

    The unary `+` keeps SQLite from feeding the filter's rows to FTS5 as
    `rowid =` lookups, one full MATCH per row (0.5 s instead of 4 ms for a
    filter value on 25,000 of 100,000 documents); as a plain check on each
    matching row it costs one B-tree probe.

    Ties on BM25 are broken by the `ct` and `doc` columns, which live in FTS5's
    content table: sorting every match by them reads that table once per match
    (a common word's thousands: 4.6 ms of a 5 ms search at 100,000 documents).
    So the matches are scored first (rowid and BM25 only, `m`), the `limit`-th
    best score is the cut, and only the matches scoring at least as well (the
    cut's whole tie group with them) are read and sorted in full: the same
    rows in the same order, at 2 ms. With fewer than `limit` matches there is
    no cut (coalesce to +infinity)."""
    match = f'SELECT rowid AS r, bm25("{fts}") AS s FROM "{fts}" WHERE "{fts}" MATCH ?'
    filters = (
        " AND +rowid IN (SELECT rid FROM search_filters WHERE ix = ? AND field = ? AND token = ?)"
        * filter_count
    )
    return (
        f"WITH m AS MATERIALIZED ({match}{filters}) "
        f'SELECT f.doc, m.s, f.ct FROM m JOIN "{fts}" AS f ON f.rowid = m.r '
        "WHERE m.s <= coalesce((SELECT s FROM m ORDER BY s LIMIT 1 OFFSET ?), 9e999) "
        "ORDER BY m.s, f.ct DESC, f.doc DESC LIMIT ?"
    )


class SqliteSearch:
    """Search indexes on one SQLite connection (the caller owns its transactions).

    `lock`: held around every query (`candidates`, `stats`), the store's own
    lock when the connection is shared with other threads; writes (`apply`,
    `write`, index creation) run inside the store's commit, which holds it.
    `create`: make the tables (False for a read-only snapshot's connection)."""

    transactional = True
    """Written by the store in its commits (`SearchWrite` ops), never from a stream."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        lock: threading.RLock | None = None,
        create: bool = True,
    ) -> None:
        self._conn = conn
        self._lock: AbstractContextManager[object] = lock if lock is not None else nullcontext()
        self._known: set[str] = set()
        """Indexes known to exist (a write checks no table then); the store
        calls `forget` when it rolls a transaction back."""
        if create:
            for statement in _SCHEMA:
                conn.execute(statement)

    def score(self, frequencies: Mapping[str, int], length: int, stats: CorpusStats) -> float:
        return bm25.score(frequencies, length, stats)

    # --- indexes ---------------------------------------------------------------

    def _fts(self, index_key: str) -> str | None:
        row = self._conn.execute(
            "SELECT fts FROM search_indexes WHERE ix = ?", (index_key,)
        ).fetchone()
        return None if row is None else str(row[0])

    def create_index(self, index_key: str) -> None:
        """Create an empty index (idempotent)."""
        with self._lock:
            self._create_index(index_key)

    def forget(self) -> None:
        """Drop what this object knows of the tables: a transaction that may
        have created or dropped an index was rolled back."""
        self._known.clear()

    def _create_index(self, index_key: str) -> None:
        if index_key in self._known:
            return
        if self._fts(index_key) is not None:
            self._known.add(index_key)
            return
        self._known.add(index_key)
        fts = _fts_name(index_key)
        self._conn.execute(
            f"CREATE VIRTUAL TABLE \"{fts}\" USING fts5(body, doc UNINDEXED, ct UNINDEXED, tokenize = 'ascii')"
        )
        self._conn.execute("INSERT INTO search_indexes VALUES (?, ?, 0, 0)", (index_key, fts))

    def drop_index(self, index_key: str) -> None:
        """Drop an index and all its entries (idempotent)."""
        with self._lock:
            self._drop_index(index_key)

    def _drop_index(self, index_key: str) -> None:
        self._known.discard(index_key)
        fts = self._fts(index_key)
        if fts is None:
            return
        self._conn.execute(f'DROP TABLE "{fts}"')
        for table in ("search_indexes", "search_docs", "search_filters"):
            self._conn.execute(f"DELETE FROM {table} WHERE ix = ?", (index_key,))

    # --- documents -------------------------------------------------------------

    def apply(self, entries: Sequence[SearchEntry]) -> None:
        """Write each entry (in the caller's transaction: versions need no
        checking, the store's commit order is the order of writes)."""
        for e in entries:
            self.write(e.index_key, e.doc_id, e.text, e.filters, e.creation_time)

    def write(
        self,
        index_key: str,
        doc_id: str,
        text: str | None,
        filters: Sequence[Value],
        creation_time: float,
    ) -> None:
        """Index (or re-index) a document: `text` is its search field, `filters` its
        filter fields' values in the index's order (`UNDEFINED` when missing).
        `text` None removes the document (deleted, or its search field is no
        longer a string: such a document can match no search)."""
        self._create_index(index_key)
        fts = _fts_name(index_key)
        if text is None:
            self._remove(index_key, fts, doc_id)
            return
        words = tokenize(text)
        tokens = [filter_token(value) for value in filters]
        cur = self._conn.execute(
            f'INSERT INTO "{fts}" (body, doc, ct) VALUES (?, ?, ?)',
            (" ".join(words), doc_id, creation_time),
        )
        rid = cur.lastrowid
        row = (index_key, doc_id, rid, len(words), " ".join(tokens))
        if self._conn.execute(_NEW_DOC, row).rowcount == 0:
            # Indexed before (an update): its old entry goes, then the new one
            # is recorded. A new document (the common case) skips the lookup.
            self._remove(index_key, fts, doc_id)
            self._conn.execute("INSERT INTO search_docs VALUES (?, ?, ?, ?, ?)", row)
        self._conn.executemany(
            "INSERT INTO search_filters VALUES (?, ?, ?, ?)",
            [(index_key, field, token, rid) for field, token in enumerate(tokens)],
        )
        self._conn.execute(
            "UPDATE search_indexes SET docs = docs + 1, words = words + ? WHERE ix = ?",
            (len(words), index_key),
        )

    def remove(self, index_key: str, doc_id: str) -> None:
        """Remove a document from an index (nothing if absent)."""
        fts = self._fts(index_key)
        if fts is not None:
            self._remove(index_key, fts, doc_id)

    def _remove(self, index_key: str, fts: str, doc_id: str) -> None:
        row = self._conn.execute(
            "SELECT rid, words, filt FROM search_docs WHERE ix = ? AND doc = ?",
            (index_key, doc_id),
        ).fetchone()
        if row is None:
            return
        rid, words, filt = row
        self._conn.execute(f'DELETE FROM "{fts}" WHERE rowid = ?', (rid,))
        self._conn.execute("DELETE FROM search_docs WHERE ix = ? AND doc = ?", (index_key, doc_id))
        self._conn.executemany(
            "DELETE FROM search_filters WHERE ix = ? AND field = ? AND token = ? AND rid = ?",
            [
                (index_key, field, token, rid)
                for field, token in enumerate(filt.split(" "))
                if token
            ],
        )
        self._conn.execute(
            "UPDATE search_indexes SET docs = docs - 1, words = words - ? WHERE ix = ?",
            (words, index_key),
        )

    # --- queries ---------------------------------------------------------------

    def candidates(
        self, index_key: str, terms: SearchTerms, filters: Mapping[int, Value], limit: int
    ) -> list[Candidate]:
        """At most `limit` documents matching any term (whole words; the last term
        also as a prefix) and every filter (filter field position -> value),
        best BM25 score first, then newest first."""
        check_filter_count(len(filters))
        check_limit(
            "SEARCH_RESULTS", limit, SEARCH_RESULTS, "Ask for at most 1,024 search results at once."
        )
        with self._lock:
            fts = self._fts(index_key)
            if fts is None or terms.empty or limit <= 0:
                return []
            sql = candidates_sql(fts, len(filters))
            params: list[object] = [match_expression(terms)]
            for field, value in sorted(filters.items()):
                params += [index_key, field, filter_token(value)]
            params += [limit - 1, limit]
            rows = self._conn.execute(sql, params).fetchall()
        return [Candidate(str(doc), -float(s), float(ct)) for doc, s, ct in rows]

    def stats(self, index_key: str, terms: SearchTerms) -> CorpusStats:
        """The index's statistics for scoring `terms` in `runtime.search.bm25`,
        counted as FTS5 counts them (a prefix term: documents with any word it starts)."""
        with self._lock:
            return self._stats(index_key, terms)

    def _stats(self, index_key: str, terms: SearchTerms) -> CorpusStats:
        fts = self._fts(index_key)
        if fts is None:
            return CorpusStats(0, 0.0, {})
        docs, words = self._conn.execute(
            "SELECT docs, words FROM search_indexes WHERE ix = ?", (index_key,)
        ).fetchone()
        frequency: dict[str, int] = {}
        queries = [(w, _phrase(w)) for w in terms.whole]
        if terms.prefix is not None:
            queries.append((terms.prefix, _phrase(terms.prefix) + " *"))
        for term, query in queries:
            (count,) = self._conn.execute(
                f'SELECT count(*) FROM "{fts}" WHERE "{fts}" MATCH ?', (query,)
            ).fetchone()
            frequency[term] = int(count)
        return CorpusStats(int(docs), words / docs if docs else 0.0, frequency)
