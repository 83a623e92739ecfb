"""Ids that encode their table, and the schema's rules."""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.errors import SchemaError, ValidationError
from runtime.schema import define_schema, define_table, index_fields
from runtime.values import InvalidTableNameError, check_table_name, is_id_for, make_id, parse_id, v
from runtime.values import ids as ids_module


def test_id_round_trip_and_table() -> None:
    for _ in range(50):
        rand = os.urandom(16)
        i = make_id("messages", rand)
        assert len(i) == 36 and i == i.lower()
        assert parse_id(i) is not None and parse_id(i)[0] == rand  # type: ignore[index]
        assert is_id_for("messages", i) and not is_id_for("users", i)


def test_corrupted_ids_are_refused() -> None:
    i = make_id("messages", bytes(16))
    flipped = i[:10] + ("0" if i[10] != "0" else "1") + i[11:]
    assert parse_id(flipped) is None
    assert parse_id(i[:-1]) is None
    assert parse_id(i.upper()) is None
    assert parse_id(123) is None


@pytest.mark.parametrize("name", ["", "a-b", "_system", "x" * 65, "with space"])
def test_bad_table_names(name: str) -> None:
    with pytest.raises(InvalidTableNameError):
        check_table_name(name)


def test_schema_validates_documents_and_lists_indexes() -> None:
    schema = define_schema(
        {
            "users": define_table({"name": v.string(), "age": v.optional(v.int64())}).index(
                "by_name", ["name"]
            )
        }
    )
    schema.validate_document("users", {"name": "a", "_id": "x", "_creationTime": 1.0})
    with pytest.raises(ValidationError, match=r"document\.age: expected int64"):
        schema.validate_document("users", {"name": "a", "age": "x"})
    schema.validate_document("other", {"anything": 1})
    assert index_fields(schema, "users", "by_name") == ["name", "_creationTime"]
    assert index_fields(schema, "users", "by_creation_time") == ["_creationTime"]
    assert index_fields(schema, "users", "nope") is None
    off = define_schema({"users": define_table({"name": v.string()})}, schema_validation=False)
    off.validate_document("users", {"name": 1})


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda t: t.index("by_id", ["a"]), "reserved"),
        (lambda t: t.index("_x", ["a"]), "name"),
        (lambda t: t.index("i", ["a", "a"]), "twice"),
        (lambda t: t.index("i", ["_creationTime"]), "appended"),
        (lambda t: t.index("i", ["missing"]), "no field"),
        (lambda t: t.index("i", []), "non-empty"),
        (lambda t: t.index("i", ["a"]).index("i", ["b"]), "twice"),
        (lambda t: t.search_index("s", search_field="b"), "string"),
    ],
)
def test_schema_rules(build: object, message: str) -> None:
    table = define_table({"a": v.string(), "b": v.int64()})
    with pytest.raises(SchemaError, match=message):
        build(table)  # type: ignore[operator]


def test_index_limits() -> None:
    fields = {f"f{i}": v.string() for i in range(20)}
    table = define_table(fields)
    table.index("wide", [f"f{i}" for i in range(15)])
    with pytest.raises(SchemaError, match="INDEX_FIELDS"):
        table.index("wider", [f"f{i}" for i in range(16)])
    for i in range(31):
        table.index(f"i{i}", ["f0"])
    with pytest.raises(SchemaError, match="INDEXES_PER_TABLE"):
        table.index("one_more", ["f0"])


def test_table_validator_must_be_objects() -> None:
    with pytest.raises(SchemaError):
        define_table(v.string())
    define_table(v.union(v.object({"k": v.literal("a")}), v.object({"k": v.literal("b")}))).index(
        "by_k", ["k"]
    )
    with pytest.raises(SchemaError):
        define_schema({"bad-name": define_table({})})


@given(st.binary(min_size=22, max_size=22))
def test_id_text_is_rfc4648_base32_in_crockfords_alphabet(data: bytes) -> None:
    """The id text (built by table lookups for speed) is exactly RFC 4648
    base32 of the 22 bytes, unpadded, in Crockford's lowercase alphabet."""
    crockford = str.maketrans(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789abcdefghjkmnpqrstvwxyz"
    )
    expected = base64.b32encode(data).decode().rstrip("=").translate(crockford)
    assert ids_module._b32(data) == expected


@given(st.text(min_size=36, max_size=36, alphabet="0123456789abcdefghjkmnpqrstvwxyzABCil"))
def test_parse_id_refuses_what_is_not_an_id_and_reads_back_what_is(text: str) -> None:
    """parse_id decodes two base32 digits per lookup (and caches): same
    answers as decoding digit by digit."""
    digits = "0123456789abcdefghjkmnpqrstvwxyz"
    expected = None
    if all(c in digits for c in text):
        n = 0
        for c in text:
            n = (n << 5) | digits.index(c)
        if not n & 0b1111:
            raw = (n >> 4).to_bytes(22, "big")
            if ids_module._checksum(raw[:20]) == raw[20:]:
                expected = (raw[:16], raw[16:20])
    assert parse_id(text) == expected
    made = make_id("t", text[:16].encode())
    assert parse_id(made) == (text[:16].encode(), ids_module.table_tag("t"))
