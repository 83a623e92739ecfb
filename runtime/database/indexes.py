"""Index maintenance: which indexes a table has and the keys a document has in them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.database.errors import InvalidDocumentError
from runtime.limits import INDEX_KEY_BYTES
from runtime.schema import SchemaDefinition, index_fields
from runtime.store.port import Key
from runtime.values import UNDEFINED, encode_key

from .fields import field_value
from .layout import index_partition, index_set_value
from .search import SearchIndexSpec, search_specs

__all__ = ["IndexSpec", "TableIndexes", "field_value"]

CREATION_TIME = "_creationTime"
ID = "_id"


@dataclass(frozen=True, slots=True)
class IndexSpec:
    table: str
    name: str
    fields: tuple[str, ...]
    """Full key fields: the user's fields then `_creationTime` (`_id` is implicit, last)."""
    partition: str = field(init=False, compare=False, repr=False)
    _plain: bool = field(init=False, compare=False, repr=False)
    """No field is a dotted path: each value is one dict lookup."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "partition", index_partition(self.table, self.name))
        object.__setattr__(self, "_plain", not any("." in f for f in self.fields))

    @property
    def is_user_index(self) -> bool:
        return self.name != "by_creation_time"

    def values(self, doc: dict[str, Any]) -> list[Any]:
        if self._plain:
            return [doc.get(f, UNDEFINED) for f in self.fields] + [doc[ID]]
        return [field_value(doc, f) for f in self.fields] + [doc[ID]]

    def key(self, doc: dict[str, Any]) -> Key:
        """The document's entry in this index (every write computes it: keep it lean)."""
        values = self.values(doc)
        for f, value in zip(self.fields, values, strict=False):
            if isinstance(value, float) and value != value:  # NaN
                raise InvalidDocumentError(
                    f"document.{f}: NaN cannot be stored in an indexed field "
                    f"(index {self.table}.{self.name}); NaN equals nothing, so no "
                    "index lookup could find it. Store null or a sentinel instead.",
                    index=self.name,
                )
        sort = encode_key(values)
        if len(sort) > INDEX_KEY_BYTES:
            raise InvalidDocumentError(
                f"index {self.table}.{self.name}: the indexed values of this document take "
                f"{len(sort):,} bytes, over the {INDEX_KEY_BYTES:,}-byte index key limit "
                "(INDEX_KEY_BYTES). Index a shorter field.",
                index=self.name,
            )
        return (self.partition, sort)


class TableIndexes:
    """The indexes of one table: `by_creation_time` plus the schema's."""

    def __init__(self, schema: SchemaDefinition | None, table: str) -> None:
        self.table = table
        specs = [IndexSpec(table, "by_creation_time", (CREATION_TIME,))]
        tdef = schema.table(table) if schema is not None else None
        for name in tdef.indexes if tdef is not None else ():
            fields = index_fields(schema, table, name)
            assert fields is not None
            specs.append(IndexSpec(table, name, tuple(fields)))
        self.specs: list[IndexSpec] = specs
        self.by_name: dict[str, IndexSpec] = {s.name: s for s in specs}
        first: list[str] = []
        for s in specs[1:]:
            if s.fields[0] not in first:
                first.append(s.fields[0])
        self.search_specs: list[SearchIndexSpec] = search_specs(schema, table)
        self.search_by_name: dict[str, SearchIndexSpec] = {s.name: s for s in self.search_specs}
        for ss in self.search_specs:
            for f in ss.filter_fields:
                if f not in first:
                    first.append(f)
        self.first_fields: list[str] = first
        """Distinct first fields of the user indexes, and the filter fields of
        search indexes: each has a field version (see `search.py`)."""
        self.unready: dict[str, str] = {}
        """Index name -> why queries cannot use it yet (being built)."""
        self.shard_value = index_set_value(self.user_indexes())
        """The index set in force as this process knows it: its writes bump a
        table shard only if the shard holds this (see `layout.index_set_value`)."""

    def user_indexes(self) -> dict[str, list[str]]:
        """{name: the user's fields} of the indexes this process maintains."""
        return {s.name: list(s.fields[:-1]) for s in self.specs[1:]}

    def adopt(self, in_force: dict[str, list[str]], value: bytes) -> list[str]:
        """Maintain the indexes in force (`in_force`, as the store's shards
        say) that this process's schema lacks or defines otherwise: a newer
        schema was pushed. Returns the names taken; those this process defined
        otherwise cannot be queried here any more (their order changed)."""
        taken = []
        for name, fields in in_force.items():
            spec = IndexSpec(self.table, name, (*fields, CREATION_TIME))
            old = self.by_name.get(name)
            if old == spec:
                continue
            if old is not None:
                self.specs.remove(old)
                self.unready[name] = (
                    "a newer schema redefined it; this process runs an older one (redeploy)"
                )
            self.specs.append(spec)
            self.by_name[name] = spec
            if spec.fields[0] not in self.first_fields:
                self.first_fields.append(spec.fields[0])
            taken.append(name)
        self.shard_value = value
        return taken
