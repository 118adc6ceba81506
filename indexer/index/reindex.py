"""Moving the calls alias to a new index version without a blink; rolling back; pruning.

``reindex`` builds the next index (``indexer.index.next_index_name``: ``<alias>-v<N>``, or
``<alias>-v<N>-<k>`` when schema N was built before) from the source of truth:

* the transcript store (``indexer.index.store``) when one is configured and holds calls, or
* the documents of the index the alias points at now, each read back into the transcript
  contract (the store, when configured, is filled from them on the way).

Either way every document is made again by the current code (terms, lemmas, metrics, tracker
tags), into an index that takes its settings and mappings from the template. Refresh and
replicas are off during the load, then put back to the definition's. Before the alias moves,
the new index must pass every check:

* it holds exactly the calls that were built (ids, so counts too), and every call of the old
  index except deleted ones (calls only the store has are added and reported);
* a fixed set of probe queries, the API's own query kinds (exact phrase, phrase in a role,
  word forms) made from the first calls by id, find the same calls in both indices;
* every field new in this mapping is populated in as many calls as the built documents fill.

The checks read calls by the doc values of ``call_id``, not by ``_id`` (which loads each
document's stored source: 40 s against 2 s for the ids of two 100k indices), after counts show
that an index keeps every call under its own id (``keeps_calls_under_their_ids``); an index that
does not (a hand-made one) is read by ``_id``.

Every call is stored under the redaction policy of the settings (``indexer.redaction.policy``),
recorded as the new index's ``_meta.redaction``: a policy change is applied to every call this
way, and the loader refuses to write into an index of another policy, so no index version is
ever half-redacted. Each call is redacted from its unredacted original when the operator keeps
those (``EARSHOT_REDACTION_ORIGINALS_DIR``), else from what the store or the index holds (a
masked call stays masked when redaction is switched off without originals). The store follows:
a call whose redaction changed is written back to it. Probe queries may answer differently only
for calls that redaction changed.

Only then is the alias moved, in one atomic ``_aliases`` call that also points ``<alias>-previous``
at the index it leaves (kept for ``rollback``). Any failed check leaves the alias untouched, deletes
the half-built index and says why. Deleted calls (``indexer.index.deletion``) are never built, and
removed again if deleted while the build ran. Loads during a reindex go to the old index; a call
loaded then makes the "every call of the old index" check fail rather than be lost, so run it while
no loader writes. (The test distribution has no ``_reindex`` API; this does not use it.)
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
from elasticsearch import Elasticsearch
from pydantic import ValidationError

from indexer.elastic import Backoff, scan_hits
from indexer.errors import AudioError, ReindexError, TranscriptError
from indexer.index.building import Builder, BuildPool, Built, can_build_in_workers, worker_count
from indexer.index.building import batches as _batches
from indexer.index.definitions import (
    BUILD_SETTINGS,
    current_index,
    definition_settings_of_build,
    index_redaction,
    index_schema_version,
    index_versions,
    next_index_name,
    previous_alias,
    put_index_template,
    redaction_meta,
    schema_version,
)
from indexer.index.deletion import all_deleted_ids, apply_tombstones
from indexer.index.documents import call_document, call_from_document
from indexer.index.loader import BulkSender, LoadSummary, Tagger
from indexer.index.store import TranscriptStore
from indexer.redaction.policy import apply_policy
from indexer.search.compiler import match_query
from indexer.search.query import Match, Mode, Pattern, RoleFilter
from indexer.search.text import terms_of_words
from indexer.settings import Settings
from indexer.transcript import Call, SourcedCall, encode_call_file

PROBE_CALLS = 20
SHOW_IDS = 5  # how many call ids an error message names
ID_PAGE = 10_000  # ids per page when a check reads ids (a page's most: max_result_window)
# Ids per ``ids`` query when a check counts among a set of calls. The sets are up to half of
# the index (a million calls: half a million ids, ~7 MB of JSON in one request); each query
# keeps to Elasticsearch's own bound on a ``terms`` query (index.max_terms_count), so 100k
# calls still need one query per count.
IDS_PER_QUERY = 65_536
CALL_ID_FIELDS = ["hits.hits.fields.call_id"]  # why call_id, not _id: the module's docstring
# The stages of a reindex in order, each timed and announced as it ends (ReindexResult.stages).
STAGES = ("prepare", "build", "refresh", "count check", "probes", "new fields", "alias move")


class Source(StrEnum):
    AUTO = "auto"  # the store when configured and not empty, else the current index
    STORE = "store"
    INDEX = "index"


@dataclass(frozen=True)
class ReindexResult:
    source: str  # what it was built from, in words
    previous: str | None  # the index the alias pointed at before (None: there was none)
    target: str
    documents: int
    added: list[str] = field(default_factory=list)  # calls the previous index did not have
    left_out_deleted: list[str] = field(default_factory=list)  # tombstoned calls not built
    stored: int = 0  # calls written to the store while building from the index
    probes: int = 0
    new_fields: dict[str, int] = field(default_factory=dict)  # field -> calls that have it
    redaction: str = "off"  # the policy every call of the new index is stored under
    redaction_before: str | None = None  # the previous index's (None: there was none)
    redacted: int = 0  # calls whose stored transcript the policy changed
    stages: dict[str, float] = field(default_factory=dict)  # STAGES -> wall seconds


class _Stages:
    """Wall seconds of each stage of a reindex, announced as it ends, so an operator (and
    scripts/bench-reindex) sees where the time goes."""

    def __init__(self, announce: Callable[[str], None] | None) -> None:
        self.seconds: dict[str, float] = {}
        self._announce = announce
        self._started = time.perf_counter()

    def done(self, stage: str) -> None:
        assert stage in STAGES, stage
        now = time.perf_counter()
        self.seconds[stage] = now - self._started
        self._started = now
        if self._announce is not None:
            self._announce(f"  {stage}: {self.seconds[stage]:.1f} s")


@dataclass(frozen=True)
class AliasMove:
    alias: str
    now: str  # the index the alias points at after the move
    before: str  # the index it pointed at before (now behind <alias>-previous)
    documents_now: int
    documents_before: int


def needs_reindex(es: Elasticsearch, settings: Settings) -> bool:
    """The alias points at an index of another schema version or redaction policy, or it is
    gone while the store still holds calls (the index was lost: rebuild it)."""
    source = current_index(es, settings.calls_alias)
    if source is None:
        store = TranscriptStore.of(settings)
        return store is not None and not store.is_empty()
    return (
        index_schema_version(es, source) != schema_version()
        or index_redaction(es, source) != settings.redaction
    )


# --- Reading the source --------------------------------------------------------------------


def _choose_source(
    settings: Settings, requested: Source, previous: str | None
) -> tuple[Source, TranscriptStore | None]:
    store = TranscriptStore.of(settings)
    has_calls = store is not None and not store.is_empty()
    if requested is Source.AUTO:
        requested = Source.STORE if has_calls else Source.INDEX
    if requested is Source.STORE and not has_calls:
        where = f"the transcript store {store} is empty" if store else "no store is configured"
        raise ReindexError(f"cannot build from the store: {where}")
    if requested is Source.INDEX and previous is None:
        raise ReindexError(
            f"alias '{settings.calls_alias}' does not exist and the store holds no calls: "
            "nothing to reindex (load calls instead)"
        )
    return requested, store


@dataclass(frozen=True, slots=True)
class _Pending:
    """A call to rebuild, not read yet: a file of the store, or a document of the index."""

    source: str
    call_id: str
    store_root: str | None = None  # read from this store
    document: bytes | None = None  # or made from this document's _source (JSON)


def _pending_from_store(store: TranscriptStore) -> Iterator[_Pending]:
    for call_id in store.call_ids():
        yield _Pending(str(store.path(call_id)), call_id, store_root=str(store.root))


def _pending_from_index(es: Elasticsearch, index: str) -> Iterator[_Pending]:
    for hit in scan_hits(es, index, size=200):
        yield _Pending(
            f"{index}/{hit['_id']}", str(hit["_id"]), document=orjson.dumps(hit["_source"])
        )


def _read_pending(pending: _Pending) -> Call:
    if pending.store_root is not None:
        try:
            return TranscriptStore(Path(pending.store_root)).read(pending.call_id)
        except TranscriptError as exc:
            raise ReindexError(f"the transcript store holds a bad file: {exc}") from exc
    assert pending.document is not None
    index = pending.source.rsplit("/", 1)[0]
    try:
        return call_from_document(orjson.loads(pending.document))
    except ValidationError as exc:
        raise ReindexError(
            f"call {pending.call_id} in {index} does not match the transcript contract: {exc}"
        ) from exc


# --- Checks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    path: str
    type: str
    nested: str | None  # the nested path it lives under, for exists queries


def _leaf_fields(
    properties: dict[str, Any], prefix: str = "", nested: str | None = None
) -> dict[str, _Field]:
    """Every searchable leaf field of a mapping (disabled objects hold nothing to search)."""
    fields: dict[str, _Field] = {}
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if spec.get("enabled") is False:
            continue
        if "properties" in spec:
            inner = path if spec.get("type") == "nested" else nested
            fields.update(_leaf_fields(spec["properties"], f"{path}.", inner))
        else:
            fields[path] = _Field(path, str(spec.get("type", "object")), nested)
    return fields


def _mapped_fields(es: Elasticsearch, index: str) -> dict[str, _Field]:
    mapping = es.indices.get_mapping(index=index)[index]["mappings"]
    return _leaf_fields(mapping.get("properties", {}))


def _values(node: Any, parts: list[str]) -> Iterator[Any]:
    if isinstance(node, list):
        for item in node:
            yield from _values(item, parts)
    elif not parts:
        yield node
    elif isinstance(node, dict) and parts[0] in node:
        yield from _values(node[parts[0]], parts[1:])


def _is_populated(document: dict[str, Any], spec: _Field) -> bool:
    for value in _values(document, spec.path.split(".")):
        if value is None:
            continue
        # A text field of blanks indexes no token; any other value is indexed as it is.
        if spec.type == "text" and isinstance(value, str) and not value.strip():
            continue
        return True
    return False


def _exists_query(spec: _Field) -> dict[str, Any]:
    exists = {"exists": {"field": spec.path}}
    return {"nested": {"path": spec.nested, "query": exists}} if spec.nested else exists


def _ids(
    es: Elasticsearch, index: str, query: dict[str, Any] | None = None, *, stored: bool = False
) -> set[str]:
    """The ids of the documents of ``index`` that ``query`` finds (all without one), in pages
    of ``ID_PAGE``, nothing else per hit: their call ids, from doc values, or with ``stored``
    their ``_id``, from their stored fields (slow). The two are the same in an index that
    keeps every call under its own id (``keeps_calls_under_their_ids``)."""
    if stored:
        hits = scan_hits(
            es, index, query, size=ID_PAGE, source=False, filter_path=["hits.hits._id"]
        )
        return {str(hit["_id"]) for hit in hits}
    hits = scan_hits(
        es,
        index,
        query,
        size=ID_PAGE,
        source=False,
        stored_fields="_none_",
        docvalue_fields=["call_id"],
        filter_path=CALL_ID_FIELDS,
    )
    return {str(value) for hit in hits for value in hit.get("fields", {}).get("call_id", [])}


def keeps_calls_under_their_ids(es: Elasticsearch, index: str, call_ids: set[str]) -> bool:
    """Whether the ids of the documents of ``index`` are exactly ``call_ids``, the distinct
    call ids they hold, shown by counts: as many documents as call ids, and an ``ids`` query
    of those call ids finds every document (so each document's id is one of them, and no two
    share one). Every index the loader or a reindex wrote passes; one with a document under
    another id than its call_id, or without a call_id, does not."""
    total = _count(es, index, {"match_all": {}})
    if total != len(call_ids):
        return False
    return _count_among(es, index, {"match_all": {}}, call_ids) == total


def _index_ids(es: Elasticsearch, index: str) -> tuple[set[str], bool]:
    """The ids of every document of ``index``, and whether they had to be read from the
    stored fields (``stored``: the index does not keep every call under its own id, so the
    checks read its ids that way too)."""
    call_ids = _ids(es, index)
    if keeps_calls_under_their_ids(es, index, call_ids):
        return call_ids, False
    return _ids(es, index, stored=True), True


def _count(es: Elasticsearch, index: str, query: dict[str, Any]) -> int:
    return int(es.count(index=index, query=query)["count"])


def _count_among(es: Elasticsearch, index: str, query: dict[str, Any], ids: set[str]) -> int:
    """How many documents of ``index`` whose id is in ``ids`` match ``query``, counted
    ``IDS_PER_QUERY`` ids at a time (a document has one id, so the parts add up exactly)."""
    ordered = sorted(ids)
    return sum(
        _count(
            es,
            index,
            {"bool": {"filter": [query, {"ids": {"values": ordered[at : at + IDS_PER_QUERY]}}]}},
        )
        for at in range(0, len(ordered), IDS_PER_QUERY)
    )


def _some(ids: set[str] | list[str]) -> str:
    shown = sorted(ids)[:SHOW_IDS]
    return ", ".join(shown) + (", ..." if len(ids) > SHOW_IDS else "")


def _probe_matches(es: Elasticsearch, index: str, fields: dict[str, _Field]) -> list[Match]:
    """The fixed probe set: from the first calls by id, the first two terms of their first
    utterance of two terms or more, searched as an exact phrase, in that role, and in word
    forms (when both indices have the lemma fields)."""
    sample = es.search(
        index=index,
        size=PROBE_CALLS,
        sort=[{"call_id": "asc"}],
        source_includes=["utterances.role", "utterances.words.text"],
    )
    with_forms = "utterances.lemma" in fields
    probes: list[Match] = []
    for hit in sample["hits"]["hits"]:
        for utterance in hit["_source"].get("utterances", []):
            terms = terms_of_words([word["text"] for word in utterance.get("words", [])])
            if len(terms) < 2:
                continue
            pattern = Pattern(tuple(term.text for term in terms[:2]))
            probes.append(Match(pattern))
            if utterance.get("role") in (RoleFilter.MANAGER, RoleFilter.CLIENT):
                probes.append(Match(pattern, role=RoleFilter(utterance["role"])))
            if with_forms:
                probes.append(Match(pattern, mode=Mode.FORMS))
            break
    # Calls often open alike ("hello, this is"): each distinct probe runs once.
    return list(dict.fromkeys(probes))


def _check_probes(
    es: Elasticsearch,
    previous: str,
    target: str,
    probes: list[Match],
    *,
    previous_ids: set[str],
    previous_stored: bool,
    held: set[str],
    deleted: set[str],
    added: set[str],
    redacted: set[str],
) -> list[str]:
    """Each probe must find the same calls in both indices, among the calls both hold that
    redaction did not change (a call whose words redaction changed may rightly answer
    otherwise). Exact, without reading every matching id from both: see ``_answers_alike``.
    ``previous_stored``: the previous index's ids are read as ``_index_ids`` read them."""
    comparable = held - added - redacted  # = previous_ids - deleted - redacted
    excluded = held - comparable
    differences = []
    for probe in probes:
        query = match_query(probe)
        before = _matching_ids(es, previous, query, previous_ids, previous_stored) & comparable
        if not _answers_alike(es, target, query, before, comparable, excluded):
            differences.append(
                _difference(es, previous, target, probe, comparable, previous_stored)
            )
    return differences


def _matching_ids(
    es: Elasticsearch, index: str, query: dict[str, Any], all_ids: set[str], stored: bool
) -> set[str]:
    """The ids ``query`` finds in ``index`` (``all_ids``: all of its ids), reading the fewer
    of the matching and the other calls: a common probe costs what a rare one does."""
    if 2 * _count(es, index, query) <= len(all_ids):
        return _ids(es, index, query, stored=stored)
    return all_ids - _ids(es, index, {"bool": {"must_not": [query]}}, stored=stored)


def _answers_alike(
    es: Elasticsearch,
    target: str,
    query: dict[str, Any],
    before: set[str],
    comparable: set[str],
    excluded: set[str],
) -> bool:
    """Whether the calls of ``comparable`` (ids ``target`` holds; ``excluded``: the others it
    holds) that ``query`` finds in ``target`` are exactly ``before`` (a subset of them).
    Two counts decide it: ``target`` finds as many of the comparable calls as ``before``
    holds, and every call of ``before`` (so the sets are equal), or, when ``before`` is the
    larger part, none of the other comparable calls (so it finds no call outside
    ``before``). A same-size different set fails the second count."""
    if not excluded:
        found = _count(es, target, query)
    elif len(excluded) <= len(comparable):
        found = _count(es, target, query) - _count_among(es, target, query, excluded)
    else:
        found = _count_among(es, target, query, comparable)
    if found != len(before):
        return False
    others = comparable - before
    if len(before) <= len(others):
        return _count_among(es, target, query, before) == len(before)
    return _count_among(es, target, query, others) == 0


def _difference(
    es: Elasticsearch,
    previous: str,
    target: str,
    probe: Match,
    comparable: set[str],
    previous_stored: bool,
) -> str:
    """What a probe that answers differently finds in each index among the comparable calls,
    for the error message (the one place both sets are read in full)."""
    query = match_query(probe)
    before = _ids(es, previous, query, stored=previous_stored) & comparable
    after = _ids(es, target, query) & comparable
    terms = " ".join(probe.what.terms) if isinstance(probe.what, Pattern) else probe
    return (
        f'"{terms}" ({probe.role.value}, {probe.mode.value}) finds {len(before)} calls '
        f"in {previous}, {len(after)} in {target}; only in {previous}: "
        f"[{_some(before - after)}], only in {target}: [{_some(after - before)}]"
    )


# --- Reindex ---------------------------------------------------------------------------------


@dataclass
class _Build:
    """What the load into the new index produced, for the checks."""

    built: set[str] = field(default_factory=set)
    redacted: set[str] = field(default_factory=set)  # calls the policy changed
    left_out_deleted: list[str] = field(default_factory=list)
    stored: int = 0
    populated: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Rebuilt:
    built: Built  # its ``stored`` set when the store must be written
    redacted: bool  # the policy changed the call
    populated: tuple[str, ...]  # the new fields its document fills


@dataclass(frozen=True)
class _Rebuilder:
    """Everything rebuilding a call needs; picklable, so worker processes can do it
    (``indexer.index.building.BuildPool``) while the reindex sends."""

    settings: Settings
    tag: Tagger
    new_fields: dict[str, _Field]
    fill_store: bool  # building from the index with a store configured: write every call
    has_store: bool

    def rebuild(self, pending: _Pending) -> _Rebuilt:
        item = SourcedCall(pending.source, _read_pending(pending))
        call = _redacted(self.settings, TranscriptStore.originals(self.settings), item)
        document = call_document(call, self.tag(call))
        changed = call != item.call
        write = self.fill_store or (self.has_store and changed)
        return _Rebuilt(
            Built(
                item.source,
                call.call_id,
                orjson.dumps(document),
                stored=encode_call_file(call, compressed=True) if write else None,
            ),
            redacted=changed,
            populated=tuple(
                path for path, spec in self.new_fields.items() if _is_populated(document, spec)
            ),
        )


def _build(
    es: Elasticsearch,
    settings: Settings,
    pending: Iterator[_Pending],
    target: str,
    *,
    deleted: set[str],
    new_fields: dict[str, _Field],
    fill_store: TranscriptStore | None,
    store: TranscriptStore | None,
    tag: Tagger,
) -> _Build:
    build = _Build(populated=dict.fromkeys(new_fields, 0))
    summary = LoadSummary()
    backoff = Backoff(
        settings.es_url, settings.es_retry_deadline_s, settings.es_retry_max_backoff_s
    )
    sender = BulkSender(
        es.options(request_timeout=settings.bulk_request_timeout_s), settings, backoff, summary
    )
    rebuilder = _Rebuilder(settings, tag, new_fields, fill_store is not None, store is not None)

    def not_deleted() -> Iterator[_Pending]:
        for item in pending:
            if item.call_id in deleted:
                build.left_out_deleted.append(item.call_id)
            else:
                yield item

    for rebuilt in _rebuilt_batches(rebuilder, not_deleted(), settings):
        ready = []
        for each in rebuilt:
            call_id = each.built.call_id
            if call_id in deleted:  # a document that names another call id than its own
                build.left_out_deleted.append(call_id)
                continue
            for path in each.populated:
                build.populated[path] += 1
            if each.redacted:
                build.redacted.add(call_id)
            if each.built.stored is not None and store is not None:
                store.put_encoded(call_id, each.built.stored)
                build.stored += fill_store is not None
            build.built.add(call_id)
            ready.append(each.built)
        sender.send(ready, target)
    if summary.failures:
        raise ReindexError(
            f"{summary.failed} calls were rejected by {target}; first: {summary.failures[0]}"
        )
    return build


def _rebuilt_batches(
    rebuilder: _Rebuilder, pending: Iterator[_Pending], settings: Settings
) -> Iterator[list[_Rebuilt]]:
    """The calls rebuilt, batch by batch in order: by worker processes (``worker_count``) while
    the batch before is sent, or here (``load_workers=1``, one batch, or what cannot go to a worker:
    see ``indexer.index.building.can_build_in_workers``)."""
    batches = _batches(pending, settings.bulk_chunk_size)
    first = list(itertools.islice(batches, 2))
    workers = worker_count(settings)
    if workers and len(first) == 2 and can_build_in_workers(Builder(settings, rebuilder.tag)):
        with BuildPool(_Rebuilder.rebuild, rebuilder, workers) as pool:
            for _, rebuilt in pool.build(itertools.chain(first, batches)):
                yield rebuilt
        return
    for batch in itertools.chain(first, batches):
        yield [rebuilder.rebuild(item) for item in batch]


def _redacted(settings: Settings, originals: TranscriptStore | None, item: SourcedCall) -> Call:
    """The call as the policy keeps it, made from its original when one is kept."""
    original = originals.get(item.call.call_id) if originals is not None else None
    try:
        return apply_policy(original or item.call, settings).call
    except AudioError as exc:
        raise ReindexError(
            f"call {item.call.call_id}: its recording cannot be bleeped ({exc}); the alias "
            "was not moved"
        ) from exc
    except TranscriptError as exc:  # an unreadable original
        raise ReindexError(f"the originals hold a bad file: {exc}") from exc


def _verify(
    es: Elasticsearch,
    previous: str | None,
    target: str,
    build: _Build,
    *,
    deleted: set[str],
    source: Source,
    new_fields: dict[str, _Field],
    accept_probe_changes: bool,
    stages: _Stages,
) -> tuple[set[str], int]:
    """Raise ReindexError naming the first failed check; return the added ids and how many
    probes ran."""
    held, _ = _index_ids(es, target)
    if held != build.built:
        raise ReindexError(
            f"{target} holds {len(held)} calls but {len(build.built)} were built; missing: "
            f"[{_some(build.built - held)}], unexpected: [{_some(held - build.built)}]"
        )
    added: set[str] = set()
    probes_run = 0
    previous_ids: set[str] = set()
    previous_stored = False
    if previous is not None:
        previous_ids, previous_stored = _index_ids(es, previous)
        before = previous_ids - deleted
        lost = before - held
        if lost:
            hint = (
                "they are not in the transcript store: run reindex --from index (which also "
                "writes them to the store)"
                if source is Source.STORE
                else "their documents name another call_id than their id, or were loaded "
                "during the reindex: run it again"
            )
            raise ReindexError(
                f"{target} would hold {len(held)} calls, {previous} holds {len(before)}: "
                f"{len(lost)} would be lost ({_some(lost)}); {hint}"
            )
        added = held - before
    stages.done("count check")
    if previous is not None:
        previous_fields = _mapped_fields(es, previous)
        probes = _probe_matches(es, previous, previous_fields)
        probes_run = len(probes)
        differences = _check_probes(
            es,
            previous,
            target,
            probes,
            previous_ids=previous_ids,
            previous_stored=previous_stored,
            held=held,
            deleted=deleted,
            added=added,
            redacted=build.redacted,
        )
        if differences and not accept_probe_changes:
            raise ReindexError(
                f"{len(differences)} of {len(probes)} probe queries answer differently: "
                f"{differences[0]} (when a change of the analysis code explains it, run again "
                "with --accept-probe-changes)"
            )
    stages.done("probes")
    for path, spec in new_fields.items():
        expected = build.populated[path]
        found = _count(es, target, _exists_query(spec))
        # Text fields: a value can analyse to no token, so only "some" versus "none" is sure.
        same = (found > 0) == (expected > 0) if spec.type == "text" else found == expected
        if not same:
            raise ReindexError(
                f"new field {path} is set in {found} calls of {target}, "
                f"but the built documents fill it in {expected}"
            )
    stages.done("new fields")
    return added, probes_run


def _describe_source(source: Source, store: TranscriptStore | None, previous: str | None) -> str:
    if source is Source.STORE:
        return f"the transcript store {store}"
    return f"the documents of {previous}"


def reindex(
    es: Elasticsearch,
    settings: Settings,
    *,
    source: Source = Source.AUTO,
    tag: Tagger,
    accept_probe_changes: bool = False,
    announce: Callable[[str], None] | None = None,
) -> ReindexResult:
    """Build the next index version, verify it, then move the alias (see the module doc).

    ``tag`` gives each call its tracker ids; callers pass the trackers stored now
    (``indexer.trackers.tagging.current_tagger``), as for the loader, so tags survive."""
    stages = _Stages(announce)
    alias = settings.calls_alias
    previous = current_index(es, alias)
    redaction_before = index_redaction(es, previous) if previous is not None else None
    chosen, store = _choose_source(settings, source, previous)
    described = _describe_source(chosen, store, previous)
    target = next_index_name(es, alias)
    if announce is not None:
        announce(f"building {target} from {described}")
    put_index_template(es, alias)
    # Settings and mappings come from the template; refresh and replicas are held off during
    # the build (BUILD_SETTINGS) and put back to the definition's before the checks.
    # A create that fails (e.g. another reindex took the name) deletes nothing of anyone's.
    es.indices.create(
        index=target,
        settings={"index": BUILD_SETTINGS},
        mappings=redaction_meta(settings.redaction),
    )
    try:
        deleted = all_deleted_ids(es, alias)
        target_fields = _mapped_fields(es, target)
        old_fields = _mapped_fields(es, previous) if previous is not None else {}
        new_fields = {path: f for path, f in target_fields.items() if path not in old_fields}
        if chosen is Source.STORE:
            assert store is not None
            pending, fill_store = _pending_from_store(store), None
        else:
            assert previous is not None
            pending, fill_store = _pending_from_index(es, previous), store
        stages.done("prepare")
        build = _build(
            es,
            settings,
            pending,
            target,
            deleted=deleted,
            new_fields=new_fields,
            fill_store=fill_store,
            store=store,
            tag=tag,
        )
        stages.done("build")
        es.indices.put_settings(index=target, settings={"index": definition_settings_of_build()})
        es.indices.refresh(index=target)
        es.cluster.health(index=target, wait_for_status="yellow", timeout="60s")
        # Calls deleted while the build ran: delete_call may have missed the half-built index.
        raced = apply_tombstones(es, alias, target)
        deleted |= set(raced)
        build.built -= set(raced)
        stages.done("refresh")
        added, probes = _verify(
            es,
            previous,
            target,
            build,
            deleted=deleted,
            source=chosen,
            new_fields=new_fields,
            accept_probe_changes=accept_probe_changes,
            stages=stages,
        )
        _move_aliases(es, alias, target)
        stages.done("alias move")
    except BaseException:
        # Unless the alias already moved (a timeout after the cluster applied the swap).
        if current_index(es, alias) != target:
            es.options(ignore_status=404).indices.delete(index=target)
        raise
    return ReindexResult(
        source=described,
        previous=previous,
        target=target,
        documents=len(build.built),
        added=sorted(added),
        left_out_deleted=sorted(build.left_out_deleted),
        stored=build.stored,
        probes=probes,
        new_fields={path: build.populated[path] for path in new_fields},
        redaction=settings.redaction,
        redaction_before=redaction_before,
        redacted=len(build.redacted),
        stages=stages.seconds,
    )


def _move_aliases(es: Elasticsearch, alias: str, target: str) -> None:
    """One atomic ``_aliases`` call: ``alias`` to ``target``, ``<alias>-previous`` to the
    index ``alias`` leaves (when there was one)."""
    leaving = current_index(es, alias)
    behind = previous_alias(alias)
    actions: list[dict[str, Any]] = []
    if leaving is not None:
        actions.append({"remove": {"index": leaving, "alias": alias}})
    actions.append({"add": {"index": target, "alias": alias, "is_write_index": True}})
    if leaving is not None:
        old_previous = current_index(es, behind)
        if old_previous is not None:
            actions.append({"remove": {"index": old_previous, "alias": behind}})
        actions.append({"add": {"index": leaving, "alias": behind}})
    es.indices.update_aliases(actions=actions)


# --- Rollback and prune ----------------------------------------------------------------------


def rollback(es: Elasticsearch, alias: str) -> AliasMove:
    """Point the alias back at ``<alias>-previous`` and ``<alias>-previous`` at the index it
    leaves, so a second rollback undoes the first. Calls deleted since are removed from the
    index it returns to; calls loaded since are not in it (reindex from the store brings them)."""
    now = current_index(es, alias)
    back = current_index(es, previous_alias(alias))
    if now is None:
        raise ReindexError(f"alias '{alias}' does not exist: nothing to roll back")
    if back is None:
        raise ReindexError(f"no previous version of '{alias}' is kept: nothing to roll back to")
    apply_tombstones(es, alias, back)
    es.indices.update_aliases(
        actions=[
            {"remove": {"index": now, "alias": alias}},
            {"add": {"index": back, "alias": alias, "is_write_index": True}},
            {"remove": {"index": back, "alias": previous_alias(alias)}},
            {"add": {"index": now, "alias": previous_alias(alias)}},
        ]
    )
    return AliasMove(
        alias,
        now=back,
        before=now,
        documents_now=int(es.count(index=back)["count"]),
        documents_before=int(es.count(index=now)["count"]),
    )


def prune(es: Elasticsearch, alias: str, *, keep_previous: bool = True) -> list[str]:
    """Delete the index versions neither ``alias`` nor (unless ``keep_previous`` is False)
    ``<alias>-previous`` points at; return their names. Without the previous version there is
    nothing to roll back to, so ``keep_previous=False`` also drops that alias."""
    serving = current_index(es, alias)
    behind = current_index(es, previous_alias(alias))
    keep = {serving} | ({behind} if keep_previous else set())
    doomed = [v.name for v in index_versions(es, alias) if v.name not in keep]
    if doomed:
        # Deleting an index removes its aliases too (also <alias>-previous when it is doomed).
        es.indices.delete(index=",".join(doomed))
    return doomed
