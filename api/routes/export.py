"""``GET /v1/search.csv``: the answer of ``/v1/search`` as a spreadsheet, one row per hit.

Same parameters as ``/v1/search`` (the ``search_request`` dependency) without the page: the
export walks every page itself and streams rows as they come, up to ``export_max_calls`` calls.

For spreadsheet users: the file is UTF-8 with a byte-order mark by default, which Excel needs to
read Cyrillic correctly (without it, it guesses the legacy code page); ``bom=false`` leaves it
out for scripts. Cells are quoted as RFC 4180 says (commas, quotes, line breaks inside text are
safe). Russian-locale Excel splits on ``;``: ask for ``delimiter=semicolon``. Seconds use a
decimal point. A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return gets a leading ``'``, so a spreadsheet shows it as text instead of running it as a
formula (CSV injection).

A call without hits (found by filters alone, or by ``NOT`` only) gives one row with the hit
columns empty. When the export is cut at the cap, the last line says so, and so do the
``X-Earshot-*`` headers; an error after streaming began also ends the file with a line saying so.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from dataclasses import replace
from enum import StrEnum
from typing import Annotated, Any

from elasticsearch import Elasticsearch
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api.deps import EsDep, SettingsDep
from api.routes.search import SearchRequestDep
from api.schemas import Problem
from indexer.errors import EarshotError
from indexer.search import CallResult, SearchRequest, SearchResponse, search_calls
from indexer.settings import Settings
from indexer.vocabulary import Vocabulary, load_vocabulary

log = logging.getLogger("earshot.api.export")

router = APIRouter(prefix="/v1", tags=["search"])

COLUMNS = (
    "call_id",
    "started_at",
    "manager_id",
    "manager_name",
    "client_id",
    "client_name",
    "role",
    "start",
    "end",
    "matched",
    "text",
)
BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 200


class Delimiter(StrEnum):
    COMMA = "comma"
    SEMICOLON = "semicolon"
    TAB = "tab"


DELIMITERS = {Delimiter.COMMA: ",", Delimiter.SEMICOLON: ";", Delimiter.TAB: "\t"}


def safe_cell(value: str | None) -> str:
    """Text as a spreadsheet will show it, never as a formula it would run."""
    if not value:
        return ""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def call_rows(call: CallResult) -> Iterator[list[Any]]:
    """One row per hit, in the answer's order; one row with empty hit columns for no hits.
    Values are written as the JSON answer writes them (dates, numbers)."""
    data = call.model_dump(mode="json", include={"call_id", "started_at", "manager", "client"})
    head: list[Any] = [
        safe_cell(data["call_id"]),
        data["started_at"],
        safe_cell(data["manager"]["id"]),
        safe_cell(data["manager"]["name"]),
        safe_cell(data["client"]["id"]),
        safe_cell(data["client"]["name"]),
    ]
    if not call.hits:
        yield [*head, "", "", "", "", ""]
    for hit in call.hits:
        yield [
            *head,
            hit.role.value,
            hit.start,
            hit.end,
            safe_cell(hit.matched),
            safe_cell(hit.text),
        ]


def _calls(
    es: Elasticsearch,
    settings: Settings,
    request: SearchRequest,
    vocabulary: Vocabulary,
    first: SearchResponse,
) -> Iterator[CallResult]:
    """The calls of every page, the first one already fetched, up to the cap."""
    page, sent = first, 0
    while True:
        for call in page.calls:
            if sent >= settings.export_max_calls:
                return
            yield call
            sent += 1
        if page.next_cursor is None or sent >= settings.export_max_calls:
            return
        page = search_calls(
            es, settings, replace(request, cursor=page.next_cursor), vocabulary=vocabulary
        )


def _stream(
    es: Elasticsearch,
    settings: Settings,
    request: SearchRequest,
    vocabulary: Vocabulary,
    first: SearchResponse,
    delimiter: str,
    bom: bool,
) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    if bom:
        buffer.write(BOM)
    writer.writerow(COLUMNS)
    rows = 0
    sent_calls = 0
    try:
        for call in _calls(es, settings, request, vocabulary, first):
            sent_calls += 1
            for row in call_rows(call):
                writer.writerow(row)
                rows += 1
                if rows % ROWS_PER_CHUNK == 0:
                    yield buffer.getvalue().encode("utf-8")
                    buffer.seek(0)
                    buffer.truncate()
    except EarshotError as exc:
        # The status line is gone already: the file itself must say it is incomplete.
        log.warning("CSV export failed after %d calls: %s", sent_calls, exc)
        writer.writerow([f"# export failed after {sent_calls} calls: {exc}"])
    else:
        if first.total > settings.export_max_calls:
            writer.writerow(
                [
                    f"# cut: {sent_calls} of {first.total} calls exported "
                    f"(EARSHOT_EXPORT_MAX_CALLS={settings.export_max_calls}); narrow the search "
                    "to export the rest"
                ]
            )
    yield buffer.getvalue().encode("utf-8")


@router.get(
    "/search.csv",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One row per hit: " + ", ".join(COLUMNS) + ".",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        400: {"model": Problem},
        503: {"model": Problem},
    },
    summary="The search as CSV: every page, one row per hit (call, manager, client, date, "
    "role, second, text)",
)
def search_csv(
    es: EsDep,
    settings: SettingsDep,
    request: SearchRequestDep,
    delimiter: Annotated[
        Delimiter,
        Query(description="`semicolon` for Excel with Russian (or other ;-list) settings."),
    ] = Delimiter.COMMA,
    bom: Annotated[
        bool,
        Query(description="Start with a UTF-8 byte-order mark, which Excel needs for Cyrillic."),
    ] = True,
) -> StreamingResponse:
    request = replace(request, size=settings.max_page_size, cursor=None)
    # The first page is fetched before answering, so a bad query is still a 400 (or a 503).
    # Read once: every page is the same query, whatever the vocabulary does meanwhile.
    vocabulary = load_vocabulary(es, settings)
    first = search_calls(es, settings, request, vocabulary=vocabulary)
    exported = min(first.total, settings.export_max_calls)
    headers = {
        "Content-Disposition": 'attachment; filename="earshot-search.csv"',
        "X-Earshot-Total-Calls": str(first.total),
        "X-Earshot-Exported-Calls": str(exported),
        "X-Earshot-Truncated": "true" if first.total > exported else "false",
    }
    return StreamingResponse(
        _stream(es, settings, request, vocabulary, first, DELIMITERS[delimiter], bom),
        media_type="text/csv; charset=utf-8",
        headers=headers,
    )
