"""Search queries: `ctx.db.query(t).with_search_index(name, lambda q: q.search(field,
text).eq(f, v))`, then `take`, `first`, `unique`, `collect`, `paginate`, `filter`.

A search query is a `Query` whose rows come from the search (in relevance
order, `Transaction.search`) instead of an index scan; everything after it,
filters, limits and pagination with live-query journals, is the same code.
Its rows are keyed by `search.rank_key` (score, creation time, id), so a
pagination cursor names the last document a page walked. Scores drift as the
corpus changes (an insert changes every term's rarity), so a cursor is
re-placed at its document's current rank before a page is read
(`_reposition`): the next page holds what ranks after that document now,
however many documents were inserted meanwhile. Only a document whose own
relevance moves across the cursor's (its text edited) can move between pages;
a cursor whose document no longer matches keeps its old rank.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from runtime.limits import SEARCH_RESULTS
from runtime.search.text import SearchTerms, check_filter_count, parse_search
from runtime.values import UNDEFINED, check_value, decode_key

from .errors import InvalidCursorError, InvalidQueryError
from .filters import evaluate
from .index_range import KeyRange
from .indexes import IndexSpec
from .pagination import Position, decode_cursor, encode_cursor
from .query import Query
from .search import SEARCH_PREFIX, SearchIndexSpec

if TYPE_CHECKING:
    from .transaction import Transaction

__all__ = ["SearchFilterBuilder", "SearchQuery"]


class SearchFilterBuilder:
    """The `q` of `with_search_index(name, lambda q: ...)`: one `search(field,
    text)` on the index's search field, then `eq(field, value)` on its filter
    fields (at most 8; `UNDEFINED` finds documents without the field)."""

    def __init__(self, spec: SearchIndexSpec, as_stored: Callable[[str, Any], Any]) -> None:
        self._spec = spec
        self._as_stored = as_stored
        self.terms: SearchTerms | None = None
        self.filters: dict[int, Any] = {}

    def search(self, field: str, text: str) -> SearchFilterBuilder:
        spec = self._spec
        if self.terms is not None:
            raise InvalidQueryError(
                f'search index "{spec.name}": search(...) was already called; a search has one '
                "search expression"
            )
        if field != spec.search_field:
            raise InvalidQueryError(
                f'search index "{spec.name}" searches field "{spec.search_field}", not "{field}"'
            )
        if not isinstance(text, str):
            raise InvalidQueryError(
                f"search(...) takes the text to search for as a string, got {type(text).__name__}"
            )
        self.terms = parse_search(text)
        return self

    def eq(self, field: str, value: Any) -> SearchFilterBuilder:
        spec = self._spec
        if self.terms is None:
            raise InvalidQueryError(
                "with_search_index: call search(field, text) first, then eq(...) filters"
            )
        if field not in spec.filter_fields:
            known = ", ".join(spec.filter_fields) or "none"
            raise InvalidQueryError(
                f'search index "{spec.name}": "{field}" is not one of its filter fields '
                f"({known}); declare it in filter_fields, or filter after the search with "
                ".filter(...)"
            )
        i = spec.filter_fields.index(field)
        if i in self.filters:
            raise InvalidQueryError(f'search index "{spec.name}": two eq(...) on "{field}"')
        if value is not UNDEFINED:
            check_value(value)
        self.filters[i] = self._as_stored(field, value)
        check_filter_count(len(self.filters))
        return self


class SearchQuery(Query):
    __slots__ = ("__stx", "_fetched", "_filters_by_position", "_search", "_terms", "_truncated")

    def __init__(
        self,
        tx: Transaction,
        spec: SearchIndexSpec,
        terms: SearchTerms,
        filters: dict[int, Any],
    ) -> None:
        # The pseudo index names the search in cursors ("$search:<name>").
        super().__init__(tx, IndexSpec(spec.table, SEARCH_PREFIX + spec.name, ()), _ALL)
        self.__stx = tx
        self._search = spec
        self._terms = terms
        self._filters_by_position = filters
        self._truncated = False
        self._fetched: dict[int, tuple[list[tuple[bytes, dict[str, Any]]], bool]] = {}
        """Results by the limit asked (a page re-placing its cursor and then
        reading asks for the same ones)."""
        """The engine had more than SEARCH_RESULTS results (collect refuses)."""

    def order(self, order: str) -> Query:
        raise InvalidQueryError(
            "search results come in relevance order (ties newest first); order() does not apply"
        )

    def _rows(
        self, rng: KeyRange, page_hint: int
    ) -> Generator[tuple[bytes, dict[str, Any], bool], None, None]:
        """(rank key, document, whether the filters keep it) in relevance order
        within [rng.lo, rng.hi), fetching more results as the consumer goes on."""
        limit = min(SEARCH_RESULTS, max(16, page_hint))
        done = 0
        while True:
            fetched = self._fetched.get(limit)
            if fetched is None:
                fetched = self.__stx.search(
                    self._search, self._terms, self._filters_by_position, limit
                )
                self._fetched[limit] = fetched
            rows, exhausted = fetched
            for key, doc in rows[done:]:
                if key < rng.lo:
                    continue
                if rng.hi is not None and key >= rng.hi:
                    return
                yield key, doc, all(evaluate(f, doc) for f in self._filters)
            done = len(rows)
            if exhausted:
                return
            if limit >= SEARCH_RESULTS:
                self._truncated = True
                return
            limit = min(SEARCH_RESULTS, limit * 4)

    def _reposition(self, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        at = decode_cursor(cursor, self._spec, False)
        if at.key is None:
            return cursor  # the start or the end
        try:
            doc_id = decode_key(at.key)[2]
        except (ValueError, IndexError) as e:
            raise InvalidCursorError(f"not a search cursor: {cursor[:40]!r}") from e
        for key, doc, _ in self._rows(_ALL, 16):
            if doc["_id"] == doc_id:
                return encode_cursor(self._spec, False, Position(key))
        return cursor

    def collect(self) -> list[dict[str, Any]]:
        got = super().collect()
        if self._truncated:
            raise InvalidQueryError(
                f"collect() on a search returns at most {SEARCH_RESULTS:,} documents "
                "(SEARCH_RESULTS); use take(n) or paginate"
            )
        return got


_ALL = KeyRange(b"", None, ())
