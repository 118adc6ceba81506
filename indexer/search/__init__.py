"""Search: what a query means and how calls are found by what was said.

The story runs text rules (``text``, ``morphology``) → the term layout (``layout``, one builder
used by indexing, matching and hits) → the query language (``query``) → its compilation to
Elasticsearch (``compiler``) and its exact matcher (``matching``) → a search request (filters,
sort, cursor, dates: ``request``) → the runner (``runner``) returning ``results``.

The names below are what other packages (the API, trackers, benchmarks) may use; they are
loaded on first use so that importing one rule (e.g. ``indexer.search.text`` at index time)
does not pull in the Elasticsearch client.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from indexer.search.compiler import NESTED_PATH, CompiledQuery
    from indexer.search.query import Mode, Node, RoleFilter, parse_query
    from indexer.search.request import (
        SearchRequest,
        date_range,
        parse_date_param,
        parse_metric_filter,
        parse_sort,
    )
    from indexer.search.results import CallHeader, CallResult, Hit, SearchResponse, SortOrder
    from indexer.search.runner import search_calls
    from indexer.search.text import terms_of_text

_HOMES = {
    "NESTED_PATH": "compiler",
    "CompiledQuery": "compiler",
    "Mode": "query",
    "Node": "query",
    "RoleFilter": "query",
    "parse_query": "query",
    "SearchRequest": "request",
    "date_range": "request",
    "parse_date_param": "request",
    "parse_metric_filter": "request",
    "parse_sort": "request",
    "CallHeader": "results",
    "CallResult": "results",
    "Hit": "results",
    "SearchResponse": "results",
    "SortOrder": "results",
    "search_calls": "runner",
    "terms_of_text": "text",
}
__all__ = [
    "NESTED_PATH",
    "CallHeader",
    "CallResult",
    "CompiledQuery",
    "Hit",
    "Mode",
    "Node",
    "RoleFilter",
    "SearchRequest",
    "SearchResponse",
    "SortOrder",
    "date_range",
    "parse_date_param",
    "parse_metric_filter",
    "parse_query",
    "parse_sort",
    "search_calls",
    "terms_of_text",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'indexer.search' has no attribute {name!r}")
    return getattr(import_module(f"indexer.search.{home}"), name)
