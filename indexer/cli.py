"""``python -m indexer``: the commands engineers run.

    load PATH...        load transcript files, directories or JSON Lines into Elasticsearch
    reindex             move the calls alias to a new index built by the current code;
                        --rollback, --prune [--all]
    delete CALL_ID...   delete calls for good (consent withdrawn): index, store, tombstone
    sync-tags           make every call's tracker tags true again (after a crash mid-change)
    vocab add|list|delete  the company vocabulary: terms and their spellings
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

from elasticsearch import Elasticsearch
from pydantic import ValidationError

from indexer.asr import cli as asr_cli
from indexer.elastic import backend_errors, connect
from indexer.errors import (
    CallNotFoundError,
    IndexVersionError,
    ReindexError,
    SearchBackendError,
    TrackerConflictError,
    VocabularyTermNotFoundError,
)
from indexer.index.deletion import delete_call
from indexer.index.loader import LoadSummary, Tagger, load_paths
from indexer.index.reindex import ReindexResult, Source, needs_reindex, prune, reindex, rollback
from indexer.settings import Settings, get_settings
from indexer.trackers.changes import sync_tags
from indexer.trackers.jobs import JobState, enqueue_vocabulary_change, finish_job, new_owner
from indexer.trackers.tagging import current_tagger
from indexer.transcript import json_schema
from indexer.vocabulary import (
    TermCreate,
    create_term,
    delete_term,
    list_terms,
    vocabulary_version,
)

EXIT_OK, EXIT_FAILED, EXIT_UNAVAILABLE = 0, 1, 2


def report(summary: LoadSummary) -> int:
    """Print warnings, failures and the summary line to stderr; return the exit status."""
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for failure in summary.failures:
        print(f"error: {failure}", file=sys.stderr)
    print(summary.line(), file=sys.stderr)
    return EXIT_FAILED if summary.failures else EXIT_OK


def tagger(es: Elasticsearch, settings: Settings) -> Tagger:
    """The per-call enrich step of load and reindex: the ids of the stored trackers a call
    mentions (``indexer.trackers``)."""
    return current_tagger(es, settings)


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def _load(args: argparse.Namespace) -> int:
    settings = get_settings()
    es = connect(settings)
    try:
        summary = load_paths(
            es,
            settings,
            args.paths,
            show_progress=not args.quiet,
            tag=tagger(es, settings),
            allow_deleted=args.undelete,
        )
    except (SearchBackendError, IndexVersionError) as exc:
        _say(f"error: {exc}")
        return EXIT_UNAVAILABLE
    return report(summary)


def _reindex_report(result: ReindexResult, alias: str) -> None:
    kept = f", {result.previous} kept as {alias}-previous" if result.previous else ""
    _say(
        f"'{alias}' now points at {result.target}: {result.documents} calls from "
        f"{result.source}; {result.probes} probe queries agree{kept}"
    )
    if result.added:
        _say(f"  {len(result.added)} calls were not in {result.previous}: {result.added[:5]}")
    if result.left_out_deleted:
        _say(f"  {len(result.left_out_deleted)} deleted calls left out")
    if result.stored:
        _say(f"  {result.stored} calls written to the transcript store")
    if result.new_fields:
        filled = ", ".join(f"{path} ({n})" for path, n in result.new_fields.items())
        _say(f"  new fields, with the calls that have them: {filled}")
    if result.redaction != (result.redaction_before or "off") or result.redacted:
        _say(
            f"  redaction {result.redaction_before or 'none'} -> {result.redaction}: "
            f"{result.redacted} calls changed"
        )
        if result.previous and result.redacted:
            # Kept for rollback, the previous version still holds what this one redacted.
            _say(
                f"  {result.previous} still holds those calls as they were: "
                "scripts/reindex --prune --all deletes it (and with it the rollback)"
            )


def _reindex(args: argparse.Namespace) -> int:
    settings = get_settings()
    alias = settings.calls_alias
    if args.all and not args.prune:
        _say("error: --all goes with --prune")
        return EXIT_UNAVAILABLE
    es = connect(settings)
    try:
        with backend_errors(settings.es_url):
            if args.rollback:
                moved = rollback(es, alias)
                _say(
                    f"'{alias}' points back at {moved.now} ({moved.documents_now} calls); "
                    f"{moved.before} ({moved.documents_before} calls) is now {alias}-previous "
                    "(--rollback again undoes this)"
                )
                return EXIT_OK
            if args.prune:
                deleted = prune(es, alias, keep_previous=not args.all)
                _say(f"deleted {', '.join(deleted)}" if deleted else "nothing to prune")
                return EXIT_OK
            if args.if_needed and not needs_reindex(es, settings):
                return EXIT_OK
            result = reindex(
                es,
                settings,
                source=Source(args.source),
                tag=tagger(es, settings),
                accept_probe_changes=args.accept_probe_changes,
                announce=_say,
            )
    except SearchBackendError as exc:
        _say(f"error: {exc}")
        return EXIT_UNAVAILABLE
    except ReindexError as exc:
        _say(f"error: reindex failed, alias unchanged: {exc}")
        return EXIT_FAILED
    _reindex_report(result, alias)
    return EXIT_OK


def _delete(args: argparse.Namespace) -> int:
    settings = get_settings()
    es = connect(settings)
    status = EXIT_OK
    try:
        with backend_errors(settings.es_url):
            for call_id in args.call_ids:
                try:
                    deletion = delete_call(es, settings, call_id)
                except CallNotFoundError as exc:
                    _say(f"error: {exc}")
                    status = EXIT_FAILED
                    continue
                where = [*deletion.indices, *(["the store"] if deletion.from_store else [])]
                _say(
                    f"deleted {call_id} from {', '.join(where) or 'nowhere (already gone)'}; "
                    f"tombstone since {deletion.deleted_at}"
                )
    except SearchBackendError as exc:
        _say(f"error: {exc}")
        return EXIT_UNAVAILABLE
    return status


def _sync_tags(_: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        changed = sync_tags(connect(settings), settings)
    except SearchBackendError as exc:
        _say(f"error: {exc}")
        return EXIT_UNAVAILABLE
    _say(f"tracker tags re-checked: {changed} calls changed")
    return EXIT_OK


def _vocab(args: argparse.Namespace) -> int:
    settings = get_settings()
    es = connect(settings)
    try:
        if args.vocab_command == "list":
            terms = list_terms(es, settings)
            for term in terms:
                spellings = ", ".join(term.spellings)
                print(f"{term.id}\t{term.language}\t{term.canonical}\t{spellings}")
            _say(f"{len(terms)} terms, version {vocabulary_version(terms)}")
            return EXIT_OK
        if args.vocab_command == "add":
            try:
                spec = TermCreate(
                    canonical=args.canonical,
                    spellings=args.spelling or [],
                    language=args.language,
                    id=args.id,
                )
            except ValidationError as exc:
                for error in exc.errors():
                    where = ".".join(str(part) for part in error["loc"])
                    _say(f"error: {where}: {error['msg']}")
                return EXIT_FAILED
            term = create_term(es, settings, spec)
            _say(f"added {term.id}")
        else:
            for term_id in args.term_ids:
                delete_term(es, settings, term_id)
                _say(f"deleted {term_id}")
        # The same job an API write queues, run here: an API worker's job for an earlier
        # vocabulary write stops (superseded) rather than write tags from a stale vocabulary.
        # Queued already claimed by this run, so no API worker starts it meanwhile; while an
        # API worker runs another job this one must not overlap, it waits (or that worker runs
        # it next, and its counts are the ones said here).
        runner = new_owner("cli")
        queued = enqueue_vocabulary_change(es, settings, owner=runner)
        job = finish_job(es, settings, queued, runner)
        if job.state is JobState.SUPERSEDED:
            _say("tracker tags: a newer vocabulary change came meanwhile; its job re-tags")
        elif job.state is JobState.FAILED:
            _say(f"error: re-tagging the calls failed: {'; '.join(job.errors)}")
            return EXIT_UNAVAILABLE
        else:
            _say(f"tracker tags re-checked: {job.calls_retagged} calls changed")
    except (TrackerConflictError, VocabularyTermNotFoundError) as exc:
        _say(f"error: {exc}")
        return EXIT_FAILED
    except SearchBackendError as exc:
        _say(f"error: {exc}")
        return EXIT_UNAVAILABLE
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
    load.add_argument(
        "--undelete",
        action="store_true",
        help="load deleted calls too (consent given again) and drop their tombstones",
    )
    load.set_defaults(run=_load)

    again = commands.add_parser(
        "reindex",
        help="rebuild the calls index with the current code, verify it, move the alias",
        description="Build the next index version from the transcript store (or the current "
        "index), verify it and move the alias atomically; or roll back, or prune old versions.",
    )
    action = again.add_mutually_exclusive_group()
    action.add_argument(
        "--rollback",
        action="store_true",
        help="point the alias back at the previous version (again: undo the rollback)",
    )
    action.add_argument(
        "--prune",
        action="store_true",
        help="delete the versions the alias does not point at, except the previous one",
    )
    again.add_argument(
        "--all", action="store_true", help="with --prune: delete the previous version too"
    )
    action.add_argument(
        "--if-needed",
        action="store_true",
        help="do nothing unless the alias points at an index of another schema version, or is "
        "gone while the store holds calls",
    )
    again.add_argument(
        "--from",
        dest="source",
        choices=[source.value for source in Source],
        default=Source.AUTO.value,
        help="build from the transcript store, the current index, or (auto) the store when it "
        "holds calls",
    )
    again.add_argument(
        "--accept-probe-changes",
        action="store_true",
        help="move the alias even when probe queries answer differently (an intended change "
        "of the analysis code)",
    )
    again.set_defaults(run=_reindex)

    delete = commands.add_parser(
        "delete", help="delete calls for good (consent withdrawn): index, store, tombstone"
    )
    delete.add_argument("call_ids", nargs="+", metavar="CALL_ID")
    delete.set_defaults(run=_delete)

    sync = commands.add_parser(
        "sync-tags", help="make every call's tracker tags true again (after a crash mid-change)"
    )
    sync.set_defaults(run=_sync_tags)

    vocab = commands.add_parser("vocab", help="the company vocabulary: terms and their spellings")
    vocab_commands = vocab.add_subparsers(dest="vocab_command", required=True)
    vocab_commands.add_parser(
        "list", help="every term (tab-separated: id, language, canonical, spellings)"
    )
    add = vocab_commands.add_parser("add", help="add a term; tracker tags follow")
    add.add_argument("canonical", help="how the term is written, e.g. Битрикс24")
    add.add_argument("-s", "--spelling", action="append", help="another spelling (repeat for more)")
    add.add_argument("-l", "--language", default="any", help="ru, en, … or any (default)")
    add.add_argument("--id", help="the term's id (default: made from the canonical form)")
    remove = vocab_commands.add_parser("delete", help="delete terms; tracker tags follow")
    remove.add_argument("term_ids", nargs="+", metavar="TERM_ID")
    vocab.set_defaults(run=_vocab)

    schema = commands.add_parser("schema", help="print the transcript JSON Schema")
    schema.set_defaults(run=_schema)

    asr_cli.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))
