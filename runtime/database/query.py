"""The query builder: `ctx.db.query(table).with_index(...).order(...).filter(...).take(n)`."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .errors import InvalidQueryError, NotUniqueError
from .filters import FilterBuilder, evaluate
from .index_range import IndexRangeBuilder, KeyRange, build_range
from .indexes import IndexSpec, TableIndexes
from .pagination import Page, parse_options, read_page

if TYPE_CHECKING:
    from .transaction import Transaction

__all__ = ["Query", "QueryInitializer"]


class Query:
    """An ordered, filtered walk over one index range. Terminal methods:
    `collect`, `take`, `first`, `unique`, `paginate`, and iteration."""

    __slots__ = ("__tx", "_filters", "_order", "_range", "_spec", "_used")

    def __init__(self, tx: Transaction, spec: IndexSpec, rng: KeyRange) -> None:
        # Name-mangled: user code holds queries, and the transaction also
        # serves the platform (system_put, restore); `q._tx` is no way in.
        self.__tx = tx
        self._spec = spec
        self._range = rng
        self._order: str | None = None
        self._filters: list[Any] = []
        self._used = False

    def order(self, order: str) -> Query:
        if order not in ("asc", "desc"):
            raise InvalidQueryError(f'order must be "asc" or "desc", got {order!r}')
        if self._order is not None:
            raise InvalidQueryError("order() was already called on this query")
        self._order = order
        return self

    def filter(self, predicate: Callable[[FilterBuilder], Any]) -> Query:
        if not callable(predicate):
            raise InvalidQueryError(
                "filter takes a function of q, e.g. lambda q: q.eq(q.field('a'), 1)"
            )
        self._filters.append(predicate(FilterBuilder()))
        return self

    @property
    def reverse(self) -> bool:
        return self._order == "desc"

    def _start(self) -> None:
        if self._used:
            raise InvalidQueryError("a query can be run once; build a new one with db.query(...)")
        self._used = True

    def _rows(
        self, rng: KeyRange, page_hint: int
    ) -> Generator[tuple[bytes, dict[str, Any], bool], None, None]:
        """(key, document, whether the filters keep it), in order: pages
        count the entries their filters drop too (`maximum_rows_read`)."""
        for key, doc in self.__tx.scan(self._spec, rng, reverse=self.reverse, page_hint=page_hint):
            yield key, doc, all(evaluate(f, doc) for f in self._filters)

    def _docs(self, page_hint: int) -> Generator[dict[str, Any], None, None]:
        self._start()
        with closing(self._rows(self._range, page_hint)) as rows:
            for _, doc, keep in rows:
                if keep:
                    yield doc

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self._docs(16)

    def collect(self) -> list[dict[str, Any]]:
        with closing(self._docs(100)) as docs:
            return list(docs)

    def take(self, n: int) -> list[dict[str, Any]]:
        if type(n) is float and n.is_integer():
            n = int(n)
        if type(n) is not int or n < 0:
            raise InvalidQueryError(f"take needs a non-negative integer, got {n!r}")
        out: list[dict[str, Any]] = []
        if n == 0:
            self._start()
            return out
        hint = n if not self._filters else max(n, 16)
        with closing(self._docs(hint)) as docs:
            for doc in docs:
                out.append(doc)
                if len(out) >= n:
                    break
        return out

    def first(self) -> dict[str, Any] | None:
        got = self.take(1)
        return got[0] if got else None

    def unique(self) -> dict[str, Any] | None:
        got = self.take(2)
        if len(got) > 1:
            raise NotUniqueError(
                f"unique(): more than one document matches this query on "
                f"{self._spec.table}.{self._spec.name} (first two: {got[0]['_id']}, {got[1]['_id']}). "
                "Use first() or take(n) if several may match."
            )
        return got[0] if got else None

    def paginate(self, options: dict[str, Any]) -> Page:
        """One page: {"page": [...], "isDone", "continueCursor", "splitCursor",
        "pageStatus"} (see pagination.py).

        In a live query, a re-run pages up to the end cursor this call had
        in the run before (the journal), so the page keeps its range; a
        last page's end cursor is the end, so it takes in every later
        insert. (A None entry, in journals signed before end cursors were
        kept for last pages, means a new page of `num_items`.)"""
        self._start()
        opts = parse_options(options)
        call = len(self.__tx.journal_out)
        journal = self.__tx.journal_in
        if opts.end_cursor is None and journal is not None and call < len(journal):
            opts = replace(opts, end_cursor=journal[call])
        opts = replace(
            opts, cursor=self._reposition(opts.cursor), end_cursor=self._reposition(opts.end_cursor)
        )
        page = read_page(self._spec, self._range, self.reverse, opts, self._rows)
        self.__tx.journal_out.append(page["continueCursor"])
        return page

    def _reposition(self, cursor: str | None) -> str | None:
        """A cursor as this query's order places it now (an index key never
        moves; a search overrides this: relevance does move)."""
        return cursor

    def _table_indexes(self, table: str) -> TableIndexes:
        return self.__tx.table_indexes(table)

    def _as_stored(self, table: str) -> Callable[[str, Any], Any]:
        schema = self.__tx.schema
        if schema is None:
            return lambda field, value: value
        return lambda field, value: schema.query_value(table, field, value)


class QueryInitializer(Query):
    """`db.query(table)`: pick an index (default `by_creation_time`)."""

    __slots__ = ("_index_chosen", "_table")

    def __init__(self, tx: Transaction, table: str) -> None:
        self._table = table
        indexes = tx.table_indexes(table)
        super().__init__(tx, indexes.by_name["by_creation_time"], KeyRange(b"", None, ()))
        self._index_chosen = False

    def with_index(
        self, name: str, range_fn: Callable[[IndexRangeBuilder], Any] | None = None
    ) -> Query:
        if self._index_chosen:
            raise InvalidQueryError("with_index was already called on this query")
        indexes = self._table_indexes(self._table)
        spec = indexes.by_name.get(name)
        if spec is None:
            known = ", ".join(sorted(indexes.by_name)) or "none"
            hint = " (by_id lookups are db.get(id))" if name == "by_id" else ""
            raise InvalidQueryError(
                f'index "{name}" not found on table "{self._table}"{hint}; its indexes: {known}. '
                "Declare indexes in functions/schema.py with define_table(...).index(name, fields)."
            )
        why = indexes.unready.get(name)
        if why is not None:
            raise InvalidQueryError(
                f'index "{name}" of table "{self._table}" cannot be queried yet: {why}'
            )
        rng = KeyRange(b"", None, ())
        if range_fn is not None:
            builder = IndexRangeBuilder(name, spec.fields, self._as_stored(self._table))
            result = range_fn(builder)
            if result is not builder:
                raise InvalidQueryError(
                    "with_index's range function must return the builder it was given "
                    "(e.g. lambda q: q.eq('a', 1))"
                )
            rng = build_range(builder)
        self._spec, self._range, self._index_chosen = spec, rng, True
        return self

    def full_table_scan(self) -> Query:
        self._index_chosen = True
        return self

    def with_search_index(self, name: str, search_fn: Callable[[Any], Any]) -> Query:
        """Query a search index: `lambda q: q.search(field, text).eq(f, v)...`;
        results in relevance order (see `search_query.py`)."""
        from .search_query import SearchFilterBuilder, SearchQuery

        if self._index_chosen:
            raise InvalidQueryError("with_search_index cannot follow with_index or another index")
        indexes = self._table_indexes(self._table)
        spec = indexes.search_by_name.get(name)
        if spec is None:
            known = ", ".join(sorted(indexes.search_by_name)) or "none"
            raise InvalidQueryError(
                f'search index "{name}" not found on table "{self._table}"; its search indexes: '
                f"{known}. Declare one in functions/schema.py with "
                "define_table(...).search_index(name, search_field=..., filter_fields=[...])."
            )
        if not callable(search_fn):
            raise InvalidQueryError(
                "with_search_index takes a function of q, e.g. lambda q: q.search('body', 'hi')"
            )
        builder = SearchFilterBuilder(spec, self._as_stored(self._table))
        if search_fn(builder) is not builder:
            raise InvalidQueryError(
                "with_search_index's function must return the builder it was given "
                "(e.g. lambda q: q.search('body', 'hello').eq('channel', 'general'))"
            )
        if builder.terms is None:
            raise InvalidQueryError(
                f'with_search_index("{name}", ...): call q.search("{spec.search_field}", text)'
            )
        self._index_chosen = True
        tx: Transaction = self._Query__tx  # type: ignore[attr-defined]  # Query's own, mangled
        return SearchQuery(tx, spec, builder.terms, builder.filters)
