"""Search indexes as the database core sees them: which entries a document
has, which writes a search watches, and which keys a search's read set holds.

A search index (`define_table(...).search_index(name, search_field=...,
filter_fields=[...])`) is served by a search engine (`runtime.search.port`);
the core only tells it what each write changes (`search_changes`) and
re-checks what it proposes.

Reactivity and serializability use the machinery of ordinary indexes:
- live queries: a search files pseudo index ranges in its read set
  (`watch_range`): `$search:<name>` (the whole index) for a search without
  filters, `$search:<name>:<i>` at its first filter's value otherwise; every
  document write emits the matching keys (`watch_keys`, from the old and the
  new document), so the sync layer's read-set index finds the searches a
  write can change, with no new kind of filing;
- commits: a search records the range versions a write to a document it
  could match bumps: the table's shards (no filter), or the field version of
  its first filter's field and value (filter fields get field versions like
  the first fields of indexes: `TableIndexes.first_fields`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runtime.schema import SchemaDefinition
from runtime.search.port import SearchEntry
from runtime.search.text import SearchTerms, tokenize
from runtime.store.port import Change
from runtime.values import encode_key, prefix_end
from runtime.values.model import Value

from . import layout
from .fields import field_value
from .readwrite import IndexRange

if TYPE_CHECKING:
    from .indexes import TableIndexes

__all__ = [
    "SEARCH_PREFIX",
    "SearchIndexSpec",
    "change_entries",
    "matches",
    "rank_key",
    "search_changes",
    "search_specs",
]

SEARCH_PREFIX = "$search:"
"""Pseudo index names of search watches (user index names cannot start with `$`)."""


@dataclass(frozen=True, slots=True)
class SearchIndexSpec:
    table: str
    name: str
    search_field: str
    filter_fields: tuple[str, ...]

    @property
    def index_key(self) -> str:
        """The engine's name for this index. The definition is part of it, so a
        redefined index is a new one (built afresh; the old one dropped)."""
        fields = ",".join((self.search_field, *self.filter_fields))
        return f"{self.table}/{self.name}/{fields}"

    def text(self, doc: dict[str, Any] | None) -> str | None:
        """The search field's text; None (not indexed) for a deleted document or
        a value that is not a string."""
        if doc is None:
            return None
        value = field_value(doc, self.search_field)
        return value if isinstance(value, str) else None

    def filters(self, doc: dict[str, Any]) -> tuple[Value, ...]:
        return tuple(field_value(doc, f) for f in self.filter_fields)

    def entry(self, doc_id: str, doc: dict[str, Any] | None, version: int) -> SearchEntry:
        """What the index holds for `doc` (None: deleted) after a write at `version`."""
        text = self.text(doc)
        if doc is None or text is None:
            return SearchEntry(self.index_key, doc_id, None, (), 0.0, version)
        return SearchEntry(
            self.index_key, doc_id, text, self.filters(doc), float(doc["_creationTime"]), version
        )

    def watch_keys(self, doc: dict[str, Any]) -> list[tuple[str, bytes]]:
        """(pseudo index, key) pairs a write of `doc` touches (see the module docstring)."""
        keys = [(SEARCH_PREFIX + self.name, b"")]
        for i, value in enumerate(self.filters(doc)):
            keys.append((f"{SEARCH_PREFIX}{self.name}:{i}", encode_key([value])))
        return keys

    def watch_range(self, filters: dict[int, Value]) -> IndexRange:
        """The pseudo range a search with these filters (position -> value) reads."""
        if not filters:
            return IndexRange(self.table, SEARCH_PREFIX + self.name, b"", None)
        i = min(filters)
        key = encode_key([filters[i]])
        return IndexRange(self.table, f"{SEARCH_PREFIX}{self.name}:{i}", key, prefix_end(key))


def search_specs(schema: SchemaDefinition | None, table: str) -> list[SearchIndexSpec]:
    """The search indexes the schema declares on `table`."""
    tdef = schema.table(table) if schema is not None else None
    if tdef is None:
        return []
    return [
        SearchIndexSpec(table, name, d.search_field, tuple(d.filter_fields))
        for name, d in tdef.search_indexes.items()
    ]


def search_changes(
    specs: list[SearchIndexSpec],
    doc_id: str,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    version: int,
) -> list[SearchEntry]:
    """The entries a write of one document changes, one per search index whose
    text or filter values it changed (an insert of a document without the
    search field changes none)."""
    out = []
    for spec in specs:
        before = spec.entry(doc_id, old, version)
        after = spec.entry(doc_id, new, version)
        if (before.text, before.filters) != (after.text, after.filters):
            out.append(after)
    return out


def matches(
    spec: SearchIndexSpec, doc: dict[str, Any], terms: SearchTerms, filters: dict[int, Value]
) -> list[str] | None:
    """`doc`'s words if it matches the search (a term as a whole word, or a
    word the last term starts, and every filter), else None. Engines only
    propose: this is the truth a candidate is checked against."""
    values = spec.filters(doc)
    for i, value in filters.items():
        if encode_key([values[i]]) != encode_key([value]):
            return None
    text = spec.text(doc)
    if text is None or terms.empty:
        return None
    words = tokenize(text)
    whole = set(terms.whole)
    prefix = terms.prefix or ""
    if any(w in whole or w.startswith(prefix) for w in words):
        return words
    return None


def rank_key(score: float, creation_time: float, doc_id: str) -> bytes:
    """A result's position in relevance order as bytes that sort ascending:
    higher score first, then newer, then by id (pagination cursors hold it)."""
    return encode_key([-score, -creation_time, doc_id])


def change_entries(change: Change, indexes: Callable[[str], TableIndexes]) -> list[SearchEntry]:
    """The search entries a committed document write (a change-feed or stream
    record) changes, versioned by its commit timestamp: what an engine fed
    from the stream applies."""
    doc_id = layout.id_from_doc_key(change.key)
    if doc_id is None:
        return []
    old = layout.decode_document(change.old_value) if change.old_value is not None else None
    new = layout.decode_document(change.new_value) if change.new_value is not None else None
    table = (new or old).table  # type: ignore[union-attr]
    specs = indexes(table).search_specs
    if not specs:
        return []
    return search_changes(
        specs, doc_id, old.doc if old else None, new.doc if new else None, change.ts
    )
