"""Search queries: `ctx.db.query(t).with_search_index(name, lambda q: q.search(field,
text).eq(f, v))`, then `take`, `first`, `unique`, `collect`, `paginate`, `filter`.

A search query is a `Query` whose rows come from the search (in relevance
order, `Transaction.search`) instead of an index scan; everything after it,
filters, limits and pagination with live-query journals, is the same code.
Its rows are keyed by `search.rank_key`, so a pagination cursor is a position
in relevance order: the next page holds what ranks after it, however many
documents are inserted meanwhile (a document whose score moves across the
cursor may move between pages, as relevance does).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from runtime.limits import SEARCH_RESULTS
from runtime.search.text import SearchTerms, check_filter_count, parse_search
from runtime.values import UNDEFINED, check_value

from .errors import InvalidQueryError
from .filters import evaluate
from .index_range import KeyRange
from .indexes import IndexSpec
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
    __slots__ = ("__stx", "_filters_by_position", "_search", "_terms", "_truncated")

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
            rows, exhausted = self.__stx.search(
                self._search, self._terms, self._filters_by_position, limit
            )
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

    def collect(self) -> list[dict[str, Any]]:
        got = super().collect()
        if self._truncated:
            raise InvalidQueryError(
                f"collect() on a search returns at most {SEARCH_RESULTS:,} documents "
                "(SEARCH_RESULTS); use take(n) or paginate"
            )
        return got


_ALL = KeyRange(b"", None, ())
