"""``python -m indexer``: the commands engineers run.

    load PATH...        load transcript files, directories or JSON Lines into Elasticsearch
    reindex             move the calls alias to a new index built by the current mapping
    schema              print the transcript JSON Schema (the file in mappings/ is this output)
    transcribe, ingest  see indexer/asr/cli.py

Exit status: 0 when everything succeeded, 1 when any item failed, 2 for usage errors and an
unreachable Elasticsearch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from indexer.asr import cli as asr_cli
from indexer.errors import IndexVersionError, ReindexError, SearchBackendError
from indexer.index import backend_errors, connect
from indexer.loader import LoadSummary, load_paths
from indexer.reindex import needs_reindex, reindex
from indexer.settings import get_settings
from indexer.transcript import json_schema

EXIT_OK, EXIT_FAILED, EXIT_UNAVAILABLE = 0, 1, 2


def report(summary: LoadSummary) -> int:
    """Print failures and the summary line to stderr; return the exit status."""
    for failure in summary.failures:
        print(f"error: {failure}", file=sys.stderr)
    print(summary.line(), file=sys.stderr)
    return EXIT_FAILED if summary.failures else EXIT_OK


def _load(args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        summary = load_paths(connect(settings), settings, args.paths, show_progress=not args.quiet)
    except (SearchBackendError, IndexVersionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    return report(summary)


def _reindex(args: argparse.Namespace) -> int:
    settings = get_settings()
    es = connect(settings)
    try:
        with backend_errors(settings.es_url):
            if args.if_needed and not needs_reindex(es, settings.calls_alias):
                return EXIT_OK
            result = reindex(es, settings.calls_alias, chunk_size=settings.bulk_chunk_size)
    except SearchBackendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except ReindexError as exc:
        print(f"error: reindex failed, alias unchanged: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"'{settings.calls_alias}' now points at {result.target} "
        f"({result.documents} calls, from {result.source}, which is kept)",
        file=sys.stderr,
    )
    return EXIT_OK


def _schema(_: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m indexer", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    load = commands.add_parser("load", help="load transcripts into Elasticsearch")
    load.add_argument("paths", nargs="+", type=Path, help="files, directories or .jsonl files")
    load.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    load.set_defaults(run=_load)

    again = commands.add_parser("reindex", help="rebuild the calls index with the current mapping")
    again.add_argument(
        "--if-needed",
        action="store_true",
        help="do nothing unless the alias points at an index of another schema version",
    )
    again.set_defaults(run=_reindex)

    schema = commands.add_parser("schema", help="print the transcript JSON Schema")
    schema.set_defaults(run=_schema)

    asr_cli.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))
