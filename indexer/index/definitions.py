"""The calls index in Elasticsearch: connecting, creating it from ``mappings/``, the alias.

Index versions are named ``<alias>-v<N>`` (N is ``_meta.schema_version`` of the mapping) for the
first index built with schema N, and ``<alias>-v<N>-<k>`` (k = 2, 3, ...) for later rebuilds
with the same schema (e.g. after the analysis code changed). The alias ``<alias>`` points at the
one serving, ``<alias>-previous`` at the one it replaced (what ``reindex --rollback`` returns to).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from elasticsearch import ApiError, Elasticsearch

from indexer.errors import IndexVersionError, RedactionPolicyError, SearchBackendError
from indexer.settings import PROJECT_ROOT


def _mappings_dir() -> Traversable:
    """``mappings/`` of the checkout when there is one (the one source), else the copy an
    installed package carries as ``indexer.mappings`` (see pyproject.toml)."""
    checkout = PROJECT_ROOT / "mappings"
    if checkout.is_dir():
        return checkout
    return files("indexer.mappings")


MAPPINGS_DIR = _mappings_dir()


MAPPING_PATH = MAPPINGS_DIR / "calls.json"


@lru_cache(maxsize=8)
def read_definition(name: str) -> dict[str, Any]:
    """Settings and mappings of an index as kept in ``mappings/<name>`` (``_comment`` dropped)."""
    definition: dict[str, Any] = json.loads((MAPPINGS_DIR / name).read_text(encoding="utf-8"))
    return {key: value for key, value in definition.items() if not key.startswith("_")}


def index_definition() -> dict[str, Any]:
    """Settings and mappings of the calls index, as kept in the repository."""
    return read_definition(MAPPING_PATH.name)


def ensure_index(
    es: Elasticsearch, index: str, definition_name: str, *, add_new_fields: bool = False
) -> None:
    """Create a small side index (trackers, tombstones) from ``mappings/`` unless it exists.

    ``add_new_fields``: an index that exists already also gets the fields its definition has
    gained since it was created (put mapping: adding fields is allowed on a live index, and
    putting an unchanged field again changes nothing), so a strict mapping of an existing
    install accepts documents written by this version."""
    if es.indices.exists(index=index):
        if add_new_fields:
            es.indices.put_mapping(
                index=index, properties=read_definition(definition_name)["mappings"]["properties"]
            )
    else:
        definition = read_definition(definition_name)
        try:
            es.indices.create(
                index=index,
                settings=definition["settings"],
                mappings=definition["mappings"],
                wait_for_active_shards="1",
            )
            return
        except ApiError as exc:
            # Two writers racing to create it both succeed: the loser's "already exists" is
            # fine.
            if exc.meta.status != 400 or "resource_already_exists" not in str(exc.body):
                raise
    # An index another writer created a moment ago exists before its shard can serve. Its
    # health is already "yellow" then (a new index's unassigned primary does not count as
    # red): wait for the primary itself.
    es.cluster.health(
        index=index, wait_for_status="yellow", wait_for_active_shards="1", timeout="30s"
    )


def schema_version() -> int:
    return int(index_definition()["mappings"]["_meta"]["schema_version"])


def versioned_index_name(alias: str, version: int | None = None, build: int = 1) -> str:
    """The index of build ``build`` of schema ``version`` (default: the mapping's): the first
    build is ``<alias>-v<N>``, a rebuild with the same schema ``<alias>-v<N>-<build>``."""
    number = schema_version() if version is None else version
    return f"{alias}-v{number}" if build == 1 else f"{alias}-v{number}-{build}"


def previous_alias(alias: str) -> str:
    """The alias on the index version ``alias`` pointed at before the last reindex."""
    return f"{alias}-previous"


@dataclass(frozen=True, order=True)
class IndexVersion:
    schema: int
    build: int
    name: str


def index_versions(es: Elasticsearch, alias: str) -> list[IndexVersion]:
    """Every ``<alias>-v*`` index, oldest schema and build first."""
    pattern = re.compile(re.escape(alias) + r"-v(\d+)(?:-(\d+))?")
    versions = []
    for name in es.indices.get(index=f"{alias}-v*", expand_wildcards="open,closed"):
        found = pattern.fullmatch(name)
        if found:
            versions.append(IndexVersion(int(found[1]), int(found[2] or 1), str(name)))
    return sorted(versions)


def next_index_name(es: Elasticsearch, alias: str) -> str:
    """The name for a new build of the current schema: one past the newest that exists."""
    builds = [v.build for v in index_versions(es, alias) if v.schema == schema_version()]
    return versioned_index_name(alias, build=max(builds, default=0) + 1)


def put_index_template(es: Elasticsearch, alias: str) -> None:
    """Install the mapping as the index template for ``<alias>-v*``: every version of the
    index, whoever creates it, gets its settings and mappings from this one place."""
    definition = index_definition()
    es.indices.put_index_template(
        name=alias,
        index_patterns=[f"{alias}-v*"],
        template={"settings": definition["settings"], "mappings": definition["mappings"]},
        priority=100,
        meta={"schema_version": schema_version(), "source": "mappings/calls.json"},
    )


# While a new index version is built (not live yet): no refreshes and no replica to copy every
# document to; ``definition_settings_of_build`` puts the definition's values back before the
# checks and the alias move.
BUILD_SETTINGS: dict[str, Any] = {
    "refresh_interval": "-1",
    "auto_expand_replicas": False,
    "number_of_replicas": 0,
}


def definition_settings_of_build() -> dict[str, Any]:
    """The definition's own value of each ``BUILD_SETTINGS`` key (None: the definition leaves
    it to Elasticsearch's default, which putting None restores)."""
    defined = index_definition()["settings"].get("index", {})
    return {key: defined.get(key) for key in BUILD_SETTINGS}


def current_index(es: Elasticsearch, alias: str) -> str | None:
    """The one index the alias points at, or None when there is no such alias."""
    if not es.indices.exists_alias(name=alias):
        return None
    names = sorted(es.indices.get_alias(name=alias))
    if len(names) != 1:
        raise SearchBackendError(f"alias '{alias}' points at {len(names)} indices: {names}")
    return str(names[0])


def index_schema_version(es: Elasticsearch, index: str) -> int:
    mapping = es.indices.get_mapping(index=index)[index]["mappings"]
    return int(mapping.get("_meta", {}).get("schema_version", 0))


def index_redaction(es: Elasticsearch, index: str) -> str:
    """The redaction policy every call of ``index`` was stored under (``_meta.redaction``;
    indices made before redaction existed hold calls as transcribed: ``off``)."""
    mapping = es.indices.get_mapping(index=index)[index]["mappings"]
    return str(mapping.get("_meta", {}).get("redaction", "off"))


def redaction_meta(redaction: str) -> dict[str, Any]:
    """The mappings to create an index version with: its redaction policy in ``_meta``, merged
    with the template's ``_meta`` by Elasticsearch."""
    return {"_meta": {"redaction": redaction}}


def ensure_calls_index(es: Elasticsearch, alias: str, redaction: str = "off") -> str:
    """Create ``<alias>-v<N>`` and the alias unless the alias exists; return the index name.

    An existing index of another schema version is refused: its strict mapping would reject
    every document, so the caller is told to reindex instead. So is one built under another
    redaction policy than ``redaction``: a call is never redacted otherwise than its index.
    """
    existing = current_index(es, alias)
    if existing is not None:
        version = index_schema_version(es, existing)
        if version != schema_version():
            raise IndexVersionError(
                f"'{alias}' points at {existing} (schema v{version}) but this code writes schema "
                f"v{schema_version()}: run python -m indexer reindex"
            )
        built_under = index_redaction(es, existing)
        if built_under != redaction:
            raise RedactionPolicyError(
                f"'{alias}' points at {existing}, whose calls are stored with redaction "
                f"'{built_under}', but EARSHOT_REDACTION is '{redaction}': run python -m indexer "
                "reindex to apply it to every call (or set it back)"
            )
        return existing
    name = versioned_index_name(alias)
    put_index_template(es, alias)
    try:
        es.indices.create(
            index=name,
            aliases={alias: {"is_write_index": True}},
            mappings=redaction_meta(redaction),
            wait_for_active_shards="1",
        )
    except ApiError as exc:
        # Another loader created it between our check and our create: that is fine.
        if exc.meta.status != 400 or "resource_already_exists" not in str(exc.body):
            raise
        es.indices.put_alias(index=name, name=alias, is_write_index=True)
    return name
