"""The Elasticsearch client's answers are parsed with orjson, to the same values the standard
library gives, for every answer the standard library could read; an NDJSON body built as bytes
is sent as it is, and any other body as the client writes it."""

from __future__ import annotations

import json

import pytest
from elasticsearch.serializer import NdjsonSerializer

from indexer.elastic import BulkBodiesAsBuilt, OrjsonAnswers, connect
from indexer.settings import Settings

ANSWERS = [
    # The shape of a search page: nested objects, floats, nulls, non-ASCII text, big counts.
    b'{"took":3,"hits":{"total":{"value":56256,"relation":"eq"},"hits":[{"_score":1.25,'
    b'"sort":[1.25,"c-1"],"_source":{"text":"\xd0\xb4\xd0\xbe\xd1\x80\xd0\xbe\xd0\xb3\xd0\xbe",'
    b'"char_start":null,"start":0.1,"end":1e-3,"n":9223372036854775807}}]}}',
    # What orjson refuses: an escaped lone surrogate.
    b'{"text":"\\ud800 x"}',
]


@pytest.mark.parametrize("answer", ANSWERS)
def test_answers_parse_as_the_standard_library_parses_them(answer: bytes) -> None:
    assert OrjsonAnswers().loads(answer) == json.loads(answer)


def test_what_neither_reads_is_still_an_error() -> None:
    with pytest.raises(Exception, match="Unable to deserialize"):
        OrjsonAnswers().loads(b'{"took": 3')


def test_the_client_parses_both_json_mimetypes_with_it() -> None:
    serializers = connect(Settings()).transport.serializers.serializers
    for mimetype in ("application/json", "application/vnd.elasticsearch+json"):
        assert isinstance(serializers[mimetype], OrjsonAnswers)


def test_the_client_sends_ndjson_built_as_bytes_as_it_is() -> None:
    serializers = connect(Settings()).transport.serializers.serializers
    body = b'{"index":{"_id":"a"}}\n{"x":1}\n' * 1000
    for mimetype in ("application/x-ndjson", "application/vnd.elasticsearch+x-ndjson"):
        assert isinstance(serializers[mimetype], BulkBodiesAsBuilt)
        assert serializers[mimetype].dumps(body) is body  # not a copy of it
    # Everything else is written as the client's own serializer writes it.
    for other in (body[:-1], body.decode(), [{"index": {"_id": "a"}}, {"x": 1}], ["{}", b"{}"]):
        assert BulkBodiesAsBuilt().dumps(other) == NdjsonSerializer().dumps(other)
