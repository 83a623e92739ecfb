"""The platform: `from runtime import query, mutation, action, v, define_schema, ...`."""

from runtime.errors import ConvexError, FunctionCallError
from runtime.functions import (
    HttpRouter,
    action,
    http_action,
    internal_action,
    internal_mutation,
    internal_query,
    mutation,
    query,
)
from runtime.functions.crons import cron_jobs
from runtime.schema import define_schema, define_table
from runtime.values import UNDEFINED, pagination_opts_validator, v

__all__ = [
    "UNDEFINED",
    "ConvexError",
    "FunctionCallError",
    "HttpRouter",
    "action",
    "cron_jobs",
    "define_schema",
    "define_table",
    "http_action",
    "internal_action",
    "internal_mutation",
    "internal_query",
    "mutation",
    "pagination_opts_validator",
    "query",
    "v",
]
