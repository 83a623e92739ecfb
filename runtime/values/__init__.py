"""Convex values in Python: the model, the wire codec, the order, index keys, ids, validators."""

from .client_json import ClientJsonError, loads_client, loads_client_value
from .ids import InvalidTableNameError, check_table_name, is_id_for, make_id, parse_id, table_tag
from .json_codec import decode_json, dumps, encode_json, encode_plain_json, loads
from .keys import component_prefixes, decode_key, encode_key, prefix_end, successor
from .model import (
    INT64_MAX,
    INT64_MIN,
    UNDEFINED,
    InvalidValueError,
    Undefined,
    Value,
    check_value,
    describe,
    has_lone_surrogate,
    kind_of,
)
from .order import compare, values_equal
from .validators import Validator, as_validator, pagination_opts_validator, v

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "UNDEFINED",
    "ClientJsonError",
    "InvalidTableNameError",
    "InvalidValueError",
    "Undefined",
    "Validator",
    "Value",
    "as_validator",
    "check_table_name",
    "check_value",
    "compare",
    "component_prefixes",
    "decode_json",
    "decode_key",
    "describe",
    "dumps",
    "encode_json",
    "encode_key",
    "encode_plain_json",
    "has_lone_surrogate",
    "is_id_for",
    "kind_of",
    "loads",
    "loads_client",
    "loads_client_value",
    "make_id",
    "pagination_opts_validator",
    "parse_id",
    "prefix_end",
    "successor",
    "table_tag",
    "v",
    "values_equal",
]
