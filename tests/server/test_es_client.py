"""The client ``indexer.elastic.connect`` makes, against the real Elasticsearch: a plain
``http://`` node is sent to by ``PlainHttpNode`` (``http.client``), which must answer exactly as
the client's default node (urllib3) does, and keep working when the node closes a connection
it holds idle. Its timeouts and cut connections are in test_faults.py (every client there is
one of these)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import elastic_transport
import pytest
from builders import make_call
from elasticsearch import Elasticsearch, NotFoundError
from faults import FaultProxy

from indexer.elastic import PlainHttpNode, connect, es_hosts, json_request
from indexer.settings import Settings


@pytest.fixture
def proxy(settings: Settings) -> Iterator[FaultProxy]:
    running = FaultProxy(settings.es_url).start()
    yield running
    running.stop()


def _default_node_client(settings: Settings) -> Elasticsearch:
    return Elasticsearch(es_hosts(settings.es_url), node_class=elastic_transport.Urllib3HttpNode)


def _nodes(es: Elasticsearch) -> list[object]:
    return list(es.transport.node_pool.all())


def test_an_http_node_is_sent_to_by_the_plain_node_and_answers_as_the_default_one(
    settings: Settings, index_calls: Callable[..., None]
) -> None:
    index_calls(
        make_call("client-1", [("client", "дорого"), ("manager", "скидка")]),
        make_call("client-2", [("client", "дорого дорого")]),
    )
    plain, default = connect(settings), _default_node_client(settings)
    try:
        assert {type(node) for node in _nodes(plain)} == {PlainHttpNode}
        assert {type(node) for node in _nodes(default)} == {elastic_transport.Urllib3HttpNode}
        body = {"query": {"match_all": {}}, "sort": [{"call_id": "asc"}]}
        answers = [
            es.options(request_timeout=10).search(index=settings.calls_alias, body=body).body
            for es in (plain, default)
        ]
        assert [hit["_source"] for hit in answers[0]["hits"]["hits"]] == [
            hit["_source"] for hit in answers[1]["hits"]["hits"]
        ]
        assert answers[0]["hits"]["total"] == {"value": 2, "relation": "eq"}
        # A HEAD (no body either way), and an error status with its body.
        for es in (plain, default):
            assert es.indices.exists_alias(name=settings.calls_alias)
            assert not es.indices.exists_alias(name=f"{settings.calls_alias}-none")
            with pytest.raises(NotFoundError) as refused:
                es.get(index=settings.calls_alias, id="no-such-call")
            assert refused.value.meta.status == 404
            # A raw request too (the search pages' path: indexer.elastic.json_request).
            counted = json_request(es, "POST", f"/{settings.calls_alias}/_count", body={})
            assert counted.body["count"] == 2
    finally:
        plain.close()
        default.close()


def test_a_connection_the_node_closed_while_idle_is_not_sent_on(
    settings: Settings, index_calls: Callable[..., None], proxy: FaultProxy
) -> None:
    """The node closes the connection after its answer (a restart between two requests): the
    next request goes on a new connection, with no error and no retry (none are allowed)."""
    index_calls(make_call("idle-1", [("client", "дорого")]))
    through = settings.model_copy(update={"es_url": proxy.url, "es_max_retries": 0})
    es = connect(through)
    try:
        proxy.arm("hang_up", f"/{settings.calls_alias}/_count", times=1)
        assert es.count(index=settings.calls_alias)["count"] == 1
        # The close follows the answer: the next request waits for it, as a request after a
        # restart would find the connection closed (sent before it, no client could tell).
        assert proxy.hung_up.wait(timeout=10)
        for _ in range(2):
            assert es.count(index=settings.calls_alias)["count"] == 1
        assert proxy.fired == [f"hang_up /{settings.calls_alias}/_count"]
        assert sum(seen.endswith(f" /{settings.calls_alias}/_count") for seen in proxy.seen) == 3
    finally:
        es.close()


def test_the_plain_node_refuses_what_it_does_not_send() -> None:
    """TLS and compression stay with the default node: connect picks it for https nodes, and
    for every node of a list that names one (the client takes one node class)."""
    for url in ("https://127.0.0.1:9200", "http://127.0.0.1:9200,https://127.0.0.1:9201"):
        es = connect(Settings(es_url=url))
        assert {type(node) for node in _nodes(es)} == {elastic_transport.Urllib3HttpNode}
        es.close()
    with pytest.raises(ValueError, match="plain, uncompressed"):
        PlainHttpNode(elastic_transport.NodeConfig("http", "127.0.0.1", 9200, http_compress=True))
