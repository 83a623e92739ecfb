"""Where the database puts things in the store: the key layout.

Partitions (the store's partition strings):

| partition            | sort key                                   | value                  |
|----------------------|--------------------------------------------|------------------------|
| `d:<id>`             | b""                                        | the stored document    |
| `i:<table>:<index>`  | encode_key(indexed values, _creationTime, _id) | the document id (UTF-8) |
| `v:<table>`          | one byte: the shard number                 | the table's index set (`index_set_value`) |
| `f:<table>:<field>`  | encode_key((value of field,)), hashed when long | b"" (a range version)  |

Documents are keyed by id alone (the id encodes its table, and the stored
value names it), so a point read is one get. `by_creation_time` is an ordinary
index; `by_id` is the document partition itself.

Range versions (DESIGN section 4): every write to a document bumps the
whole-table version shard chosen by its id, and, for each distinct first
field of the table's user indexes, the field version of its old and new value.
A range read with an equality on an index's first field checks that one field
version; any other range read checks every table shard.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from runtime.limits import TABLE_VERSION_SHARDS
from runtime.store.port import Key
from runtime.values import dumps, encode_key, loads

__all__ = [
    "FIELD_VERSION_KEY_BYTES",
    "StoredDocument",
    "decode_document",
    "decode_document_body",
    "doc_key",
    "encode_document",
    "field_version_key",
    "id_from_doc_key",
    "index_partition",
    "index_set_value",
    "parse_index_set",
    "table_shard_key",
    "table_shard_keys",
    "table_shard_of",
]


def doc_key(doc_id: str) -> Key:
    return (f"d:{doc_id}", b"")


def id_from_doc_key(key: Key) -> str | None:
    pk = key[0]
    return pk[2:] if pk.startswith("d:") else None


def index_partition(table: str, index: str) -> str:
    return f"i:{table}:{index}"


def table_shard_of(doc_id: str) -> int:
    return hashlib.blake2b(doc_id.encode(), digest_size=1).digest()[0] % TABLE_VERSION_SHARDS


def table_shard_keys(table: str) -> list[Key]:
    return [(f"v:{table}", bytes([s])) for s in range(TABLE_VERSION_SHARDS)]


def table_shard_key(table: str, doc_id: str) -> Key:
    return (f"v:{table}", bytes([table_shard_of(doc_id)]))


FIELD_VERSION_KEY_BYTES = 256
"""Field-version sort keys longer than this are hashed (see `field_version_key`)."""

_HASHED = b"\xfe"
"""First byte of a hashed field-version key: no `encode_key` output starts
with it (its type tags are 0x01..0x0A), so a hashed key never equals a plain one."""


def index_set_value(indexes: dict[str, list[str]]) -> bytes:
    """The value every table shard of a table holds: the user indexes in
    force for it, `{name: fields}` as compact sorted JSON (b"" for none).

    Every document write bumps one shard of its table on the condition that
    its value is the index set the writer maintains (zero extra transaction
    items), so a process still on an older schema cannot commit a write that
    misses an index a push built meanwhile: it conflicts, reads the set in
    force from the shard (`Database._adopt_index_sets`) and re-runs."""
    if not indexes:
        return b""
    return json.dumps(indexes, sort_keys=True, separators=(",", ":")).encode()


def parse_index_set(value: bytes) -> dict[str, list[str]]:
    if not value:
        return {}
    loaded = json.loads(value)
    assert isinstance(loaded, dict)
    return {str(k): [str(f) for f in fs] for k, fs in loaded.items()}


def field_version_key(table: str, field: str, value: Any) -> Key:
    """The range version of one value of an index's first field.

    Field versions are only ever read and written at a point (an equality),
    never scanned, so a long value's key can be its digest: an `eq` on a
    2 KB string then needs no sort key longer than DynamoDB's 1,024 bytes,
    and behaves the same on every store. Writes and reads go through this
    one function, so both sides always agree on the key."""
    sort = encode_key([value])
    if len(sort) > FIELD_VERSION_KEY_BYTES:
        sort = _HASHED + hashlib.blake2b(sort, digest_size=32).digest()
    return (f"f:{table}:{field}", sort)


@dataclass(frozen=True, slots=True)
class StoredDocument:
    table: str
    doc: dict[str, Any]


def encode_document(table: str, doc: dict[str, Any]) -> bytes:
    """The stored form: the table name, a newline, the document as
    convex_encoded_json (lossless for every Convex value)."""
    return table.encode() + b"\n" + dumps(doc)


def decode_document(data: bytes) -> StoredDocument:
    table, _, body = data.partition(b"\n")
    return StoredDocument(table.decode(), _document(body))


def decode_document_body(data: bytes) -> dict[str, Any]:
    """The document alone of a stored form (`decode_document(data).doc`,
    without the table's name: what a scan needs per document)."""
    return _document(data.partition(b"\n")[2])


def _document(body: bytes) -> dict[str, Any]:
    doc = loads(body)
    assert isinstance(doc, dict)
    return doc
