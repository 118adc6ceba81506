"""The calls index in Elasticsearch: connecting, creating it from ``mappings/``, the alias."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import elastic_transport
from elasticsearch import ApiError, Elasticsearch

from indexer.errors import IndexVersionError, SearchBackendError
from indexer.settings import PROJECT_ROOT, Settings

MAPPING_PATH = PROJECT_ROOT / "mappings" / "calls.json"


@lru_cache(maxsize=1)
def index_definition() -> dict[str, Any]:
    """Settings and mappings of the calls index, as kept in the repository."""
    definition: dict[str, Any] = json.loads(MAPPING_PATH.read_text(encoding="utf-8"))
    return {key: value for key, value in definition.items() if not key.startswith("_")}


def schema_version() -> int:
    return int(index_definition()["mappings"]["_meta"]["schema_version"])


def versioned_index_name(alias: str, version: int | None = None) -> str:
    return f"{alias}-v{schema_version() if version is None else version}"


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


def connect(settings: Settings) -> Elasticsearch:
    return Elasticsearch(
        settings.es_url,
        request_timeout=settings.es_request_timeout_s,
        max_retries=settings.es_max_retries,
        retry_on_timeout=True,
    )


@contextmanager
def backend_errors(es_url: str) -> Iterator[None]:
    """Turn transport failures into one clear SearchBackendError naming the cluster."""
    try:
        yield
    except elastic_transport.ConnectionError as exc:
        raise SearchBackendError(
            f"Elasticsearch at {es_url} is unreachable ({exc.message})"
        ) from exc
    except elastic_transport.ConnectionTimeout as exc:
        raise SearchBackendError(f"Elasticsearch at {es_url} timed out") from exc
    except ApiError as exc:
        if exc.meta.status >= 500 or exc.meta.status == 429:
            raise SearchBackendError(
                f"Elasticsearch at {es_url} failed: {exc.meta.status} {exc.message}"
            ) from exc
        raise


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


def ensure_calls_index(es: Elasticsearch, alias: str) -> str:
    """Create ``<alias>-v<N>`` and the alias unless the alias exists; return the index name.

    An existing index of another schema version is refused: its strict mapping would reject
    every document, so the caller is told to reindex instead.
    """
    existing = current_index(es, alias)
    if existing is not None:
        version = index_schema_version(es, existing)
        if version != schema_version():
            raise IndexVersionError(
                f"'{alias}' points at {existing} (schema v{version}) but this code writes schema "
                f"v{schema_version()}: run python -m indexer reindex"
            )
        return existing
    name = versioned_index_name(alias)
    put_index_template(es, alias)
    try:
        es.indices.create(
            index=name, aliases={alias: {"is_write_index": True}}, wait_for_active_shards="1"
        )
    except ApiError as exc:
        # Another loader created it between our check and our create: that is fine.
        if exc.meta.status != 400 or "resource_already_exists" not in str(exc.body):
            raise
        es.indices.put_alias(index=name, name=alias, is_write_index=True)
    return name


def is_reachable(es: Elasticsearch) -> bool:
    """Whether the cluster answers. Not ``ping()``: its ``HEAD /`` lives in the ``rest-root``
    module, which the test distribution lacks."""
    try:
        es.cluster.health()
    except (elastic_transport.TransportError, ApiError):
        return False
    return True
