"""The Kibana saved objects in kibana/*.ndjson, checked without a Kibana (none can run here).

What is checked: every line is a saved object whose embedded JSON strings parse; every reference
points at an object in the files and every reference an object needs is there (search and Lens
layers → data view, dashboard panels → their objects); the dashboard's attributes are those
Kibana's dashboard schema accepts and its panels fit the 48-column grid; Lens layers are
internally consistent; and every field any object names — KQL queries (nested groups
resolved), aggregations, Discover columns and sort, time field, formats, source filters — exists
in mappings/calls.json with a type that use allows (aggregations never on nested fields). The
field check is run against a mapping with a renamed field, to show it fails.

Last, the objections search's KQL is read with KQL's documented semantics (our reading, not
Kibana's parser): run as the equivalent Elasticsearch query on the real node over the sample
calls, it finds exactly the calls a brute-force reading of the transcripts finds.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from indexer.index.loader import load_paths
from indexer.settings import PROJECT_ROOT, Settings
from indexer.trackers.tagging import current_tagger

KIBANA_DIR = PROJECT_ROOT / "kibana"
MAPPING_FILE = PROJECT_ROOT / "mappings" / "calls.json"
SAMPLES = PROJECT_ROOT / "samples" / "calls"
DATA_VIEW_ID = "earshot-calls"
OBJECTIONS_ID = "earshot-client-objections"
# Embedded JSON, stored by Kibana as strings inside attributes.
JSON_STRING_ATTRIBUTES = ("visState", "uiStateJSON", "panelsJSON", "optionsJSON")
# What Kibana's dashboard attribute schema accepts (it forbids unknown keys on create/import).
DASHBOARD_ATTRIBUTES = {
    "title", "description", "kibanaSavedObjectMeta", "timeRestore", "timeFrom", "timeTo",
    "refreshInterval", "controlGroupInput", "panelsJSON", "optionsJSON", "hits", "version",
    "sections",
}  # fmt: skip
GRID_COLUMNS = 48
AGGREGATABLE = {
    "keyword", "boolean", "date", "date_nanos", "ip",
    "long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float",
}  # fmt: skip
NUMERIC = AGGREGATABLE - {"keyword", "boolean", "date", "date_nanos", "ip"}
# Lens operation → field types it accepts.
LENS_OPERATIONS = {
    "terms": AGGREGATABLE,
    "date_histogram": {"date", "date_nanos"},
    "range": NUMERIC,
    "sum": NUMERIC,
    "average": NUMERIC,
    "median": NUMERIC,
    "min": NUMERIC | {"date"},
    "max": NUMERIC | {"date"},
    "unique_count": AGGREGATABLE,
}
LENS_RECORDS = "___records___"  # Lens's stand-in "field" of count: every document


# --- the objects --------------------------------------------------------------------------------


def load_objects(directory: Path = KIBANA_DIR) -> list[dict[str, Any]]:
    objects = []
    for path in sorted(directory.glob("*.ndjson")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                obj = json.loads(line)
                assert isinstance(obj, dict), f"{path.name}:{number}"
                objects.append(obj)
    return objects


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return load_objects()


def by_type(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["type"] == kind]


def search_source(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["attributes"].get("kibanaSavedObjectMeta", {})
    source: dict[str, Any] = json.loads(meta.get("searchSourceJSON", "{}"))
    return source


def lens_layers(obj: dict[str, Any]) -> dict[str, Any]:
    layers: dict[str, Any] = obj["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]
    return layers


def dashboard_panels(obj: dict[str, Any]) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = json.loads(obj["attributes"]["panelsJSON"])
    return panels


# --- the mapping --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MappedField:
    type: str  # the Elasticsearch type; "object" for a plain object
    nested_path: str | None  # the innermost nested field this one lies in
    searchable: bool  # indexed (not index:false, not under enabled:false)


def mapped_fields(mapping: dict[str, Any]) -> dict[str, MappedField]:
    """Every path of the mapping, sub-fields (``fields``) and objects included."""
    found: dict[str, MappedField] = {}

    def walk(properties: dict[str, Any], prefix: str, nested: str | None, on: bool) -> None:
        for name, spec in properties.items():
            path = f"{prefix}{name}"
            kind = spec.get("type", "object")
            searchable = on and spec.get("index", True) and spec.get("enabled", True)
            found[path] = MappedField(kind, nested, searchable)
            for sub, sub_spec in spec.get("fields", {}).items():
                found[f"{path}.{sub}"] = MappedField(sub_spec["type"], nested, searchable)
            if "properties" in spec:
                inner = path if kind == "nested" else nested
                walk(spec["properties"], f"{path}.", inner, searchable)

    walk(mapping["mappings"]["properties"], "", None, True)
    return found


@pytest.fixture(scope="module")
def mapping() -> dict[str, MappedField]:
    return mapped_fields(json.loads(MAPPING_FILE.read_text(encoding="utf-8")))


# --- KQL, the subset our objects use, after Kibana's grammar ----------------------------------


class KqlError(ValueError):
    pass


@dataclass(frozen=True)
class Value:
    text: str
    quoted: bool


@dataclass(frozen=True)
class Node:
    op: str  # and | or | not | nested | match | range | text
    children: tuple[Node, ...] = ()
    field: str = ""  # match, range, nested: as written (relative inside a nested group)
    values: Any = None  # match: a value tree; range: (operator, value); text: a value tree


TOKEN = re.compile(
    r'\s*(?:(?P<quoted>"(?:[^"\\]|\\.)*")'  # "a phrase", \" escapes a quote
    r"|(?P<op><=|>=|[<>(){}:])"
    r'|(?P<word>(?:[^\s"\\(){}:<>]|\\.)+))'  # anything else, \ escapes a special character
)
KEYWORDS = {"and", "or", "not"}


def tokenize(query: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while query[position:].strip():
        found = TOKEN.match(query, position)
        if not found:
            raise KqlError(f"cannot read {query[position:]!r}")
        position = found.end()
        if found["quoted"]:
            tokens.append(("quoted", re.sub(r"\\(.)", r"\1", found["quoted"][1:-1])))
        elif found["op"]:
            tokens.append(("op", found["op"]))
        else:
            word = found["word"]
            kind = "keyword" if word.lower() in KEYWORDS else "word"
            tokens.append(
                (kind, word.lower() if kind == "keyword" else re.sub(r"\\(.)", r"\1", word))
            )
    return tokens


class KqlParser:
    """OrQuery / AndQuery / NotQuery / nested groups / field:value lists, as KQL defines them."""

    def __init__(self, query: str) -> None:
        self.tokens = tokenize(query)
        self.at = 0

    def parse(self) -> Node:
        node = self.or_query()
        if self.at != len(self.tokens):
            raise KqlError(f"unexpected {self.tokens[self.at][1]!r}")
        return node

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.at + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def take(self, kind: str, text: str | None = None) -> str:
        got = self.peek()
        if got[0] != kind or (text is not None and got[1] != text):
            raise KqlError(f"expected {text or kind}, got {got[1] or 'the end'!r}")
        self.at += 1
        return got[1]

    def binary(self, keyword: str, operand: Any) -> Any:
        items = [operand()]
        while self.peek() == ("keyword", keyword):
            self.at += 1
            items.append(operand())
        return items[0] if len(items) == 1 else Node(keyword, tuple(items))

    def or_query(self) -> Node:
        node: Node = self.binary("or", self.and_query)
        return node

    def and_query(self) -> Node:
        node: Node = self.binary("and", self.not_query)
        return node

    def not_query(self) -> Node:
        if self.peek() == ("keyword", "not"):
            self.at += 1
            return Node("not", (self.not_query(),))
        return self.sub_query()

    def sub_query(self) -> Node:
        if self.peek() == ("op", "("):
            self.at += 1
            node = self.or_query()
            self.take("op", ")")
            return node
        kind, text = self.peek()
        if kind not in ("word", "quoted"):
            raise KqlError(f"expected a field or a value, got {text or 'the end'!r}")
        following = self.peek(1)
        if following == ("op", ":"):
            self.at += 2
            if self.peek() == ("op", "{"):
                self.at += 1
                inner = self.or_query()
                self.take("op", "}")
                return Node("nested", (inner,), field=text)
            return Node("match", field=text, values=self.value_list())
        if following[0] == "op" and following[1] in ("<", "<=", ">", ">="):
            self.at += 2
            return Node("range", field=text, values=(following[1], self.value()))
        return Node("text", values=self.value())

    def value_list(self) -> Any:
        if self.peek() == ("op", "("):
            self.at += 1
            values = self.value_or()
            self.take("op", ")")
            return values
        return self.value()

    def value_or(self) -> Any:
        return self.binary("or", self.value_and)

    def value_and(self) -> Any:
        return self.binary("and", self.value_not)

    def value_not(self) -> Any:
        if self.peek() == ("keyword", "not"):
            self.at += 1
            return Node("not", (self.value_not(),))
        return self.value_list()

    def value(self) -> Value:
        kind, text = self.peek()
        if kind not in ("word", "quoted"):
            raise KqlError(f"expected a value, got {text or 'the end'!r}")
        self.at += 1
        return Value(text, kind == "quoted")


def parse_kql(query: str) -> Node | None:
    return KqlParser(query).parse() if query.strip() else None


def kql_fields(node: Node | None, path: str = "") -> Iterator[tuple[str, str, str]]:
    """(full field name, "query" or "nested", enclosing nested path) for each field named."""
    if node is None:
        return
    if node.op in ("match", "range", "nested"):
        full = f"{path}.{node.field}" if path else node.field
        yield full, "nested" if node.op == "nested" else "query", path
        if node.op == "nested":
            yield from kql_fields(node.children[0], full)
        return
    for child in node.children:
        yield from kql_fields(child, path)


# --- every field every object names ------------------------------------------------------------


@dataclass(frozen=True)
class FieldUse:
    where: str  # object and place, for the failure message
    field: str
    use: str  # query | nested | aggregation:<op> | sort | column | time | format | source_filter
    nested_path: str = ""  # for queries: the nested group it sits in


def kql_uses(where: str, query: dict[str, Any] | None) -> list[FieldUse]:
    if not query or not query.get("query"):
        return []
    assert query.get("language") == "kuery", f"{where}: only KQL is checked"
    return [
        FieldUse(where, name, use, path)
        for name, use, path in kql_fields(parse_kql(query["query"]))
    ]


def field_uses(objects: list[dict[str, Any]]) -> list[FieldUse]:
    uses: list[FieldUse] = []
    for obj in objects:
        name = f"{obj['type']}/{obj['id']}"
        attributes = obj["attributes"]
        if "kibanaSavedObjectMeta" in attributes:
            uses += kql_uses(f"{name} query", search_source(obj).get("query"))
        if obj["type"] == "index-pattern":
            uses.append(FieldUse(f"{name} timeFieldName", attributes["timeFieldName"], "time"))
            for key in json.loads(attributes.get("fieldFormatMap", "{}")):
                uses.append(FieldUse(f"{name} fieldFormatMap", key, "format"))
            for rule in json.loads(attributes.get("sourceFilters", "[]")):
                uses.append(FieldUse(f"{name} sourceFilters", rule["value"], "source_filter"))
        elif obj["type"] == "search":
            for column in attributes["columns"]:
                uses.append(FieldUse(f"{name} columns", column, "column"))
            for sort_field, _ in attributes["sort"]:
                uses.append(FieldUse(f"{name} sort", sort_field, "sort"))
        elif obj["type"] == "lens":
            uses += kql_uses(f"{name} query", attributes["state"].get("query"))
            for layer_id, layer in lens_layers(obj).items():
                for column_id, column in layer["columns"].items():
                    where = f"{name} layer {layer_id} column {column_id}"
                    uses += kql_uses(f"{where} filter", column.get("filter"))
                    if column["operationType"] == "count" and column.get("sourceField") in (
                        None,
                        LENS_RECORDS,
                    ):
                        continue
                    use = f"aggregation:{column['operationType']}"
                    uses.append(FieldUse(where, column["sourceField"], use))
        elif obj["type"] == "visualization":
            vis_state = json.loads(attributes["visState"])
            for agg in vis_state.get("aggs", []):
                if "field" in agg.get("params", {}):
                    use = f"aggregation:{agg['type']}"
                    uses.append(FieldUse(f"{name} agg {agg['id']}", agg["params"]["field"], use))
            if vis_state["type"] == "markdown":
                uses += markdown_kql_uses(name, vis_state["params"]["markdown"])
    return uses


def markdown_kql_uses(where: str, markdown: str) -> list[FieldUse]:
    """Code spans that hold a field query are KQL examples: they are checked like queries."""
    uses = []
    for snippet in re.findall(r"`([^`]+)`", markdown):
        if re.search(r"[\w.]+\s*:", snippet):
            uses += kql_uses(
                f"{where} example {snippet!r}", {"query": snippet, "language": "kuery"}
            )
    return uses


def field_problems(uses: list[FieldUse], mapping: dict[str, MappedField]) -> list[str]:
    problems = []
    for use in uses:
        mapped = mapping.get(use.field)
        if mapped is None:
            problems.append(f"{use.where}: {use.field!r} is not in mappings/calls.json")
            continue
        leaf = mapped.type not in ("object", "nested")
        if use.use == "nested":
            if mapped.type != "nested":
                problems.append(f"{use.where}: {use.field!r} is not a nested field")
        elif use.use == "query":
            if not (leaf and mapped.searchable):
                problems.append(f"{use.where}: {use.field!r} cannot be searched")
            elif mapped.nested_path and mapped.nested_path != use.nested_path:
                problems.append(
                    f"{use.where}: {use.field!r} lies in nested {mapped.nested_path!r}: query it "
                    f"inside {mapped.nested_path}:{{ ... }}"
                )
            elif not mapped.nested_path and use.nested_path:
                problems.append(
                    f"{use.where}: {use.field!r} is not in nested {use.nested_path!r}: query it "
                    "outside that group"
                )
        elif use.use == "source_filter":
            pass  # any existing path, objects included, may be hidden from Discover
        elif not leaf:
            problems.append(f"{use.where}: {use.field!r} is an object, not a field")
        elif mapped.nested_path is not None and use.use != "format":
            problems.append(
                f"{use.where}: {use.field!r} is inside nested {mapped.nested_path!r}: Kibana "
                "cannot aggregate, sort or show it; use a call-level field"
            )
        elif use.use == "time" and mapped.type != "date":
            problems.append(f"{use.where}: time field {use.field!r} is {mapped.type}, not date")
        elif use.use == "sort" and mapped.type not in AGGREGATABLE:
            problems.append(f"{use.where}: cannot sort on {mapped.type} field {use.field!r}")
        elif use.use.startswith("aggregation:"):
            operation = use.use.split(":", 1)[1]
            accepted = LENS_OPERATIONS.get(operation)
            if accepted is None:
                problems.append(f"{use.where}: operation {operation!r} is not checked here")
            elif mapped.type not in accepted:
                problems.append(
                    f"{use.where}: {operation} cannot use {mapped.type} field {use.field!r}"
                )
    return problems


# --- tests: structure ---------------------------------------------------------------------------


def test_every_line_is_a_saved_object_with_parsable_embedded_json(
    objects: list[dict[str, Any]],
) -> None:
    assert {obj["type"] for obj in objects} >= {"index-pattern", "dashboard", "search", "lens"}
    keys = [(obj["type"], obj["id"]) for obj in objects]
    assert len(keys) == len(set(keys)), "duplicate type/id"
    for obj in objects:
        assert set(obj) <= {
            "type", "id", "attributes", "references", "coreMigrationVersion",
            "typeMigrationVersion", "managed",
        }, obj["id"]  # fmt: skip
        assert obj["attributes"]["title"], obj["id"]
        # Migration versions Kibana knows: it runs every later migration of the type on import.
        assert obj["coreMigrationVersion"] == "8.8.0", obj["id"]
        assert re.fullmatch(r"[78]\.\d+\.\d+", obj["typeMigrationVersion"]), obj["id"]
        for key in JSON_STRING_ATTRIBUTES:
            if key in obj["attributes"]:
                json.loads(obj["attributes"][key])
        search_source(obj)


def test_the_data_view_is_on_the_calls_alias_by_start_time(objects: list[dict[str, Any]]) -> None:
    (data_view,) = by_type(objects, "index-pattern")
    assert data_view["id"] == DATA_VIEW_ID
    # The default calls alias (indexer/settings.py), not an index: it follows reindexing.
    assert data_view["attributes"]["title"] == Settings.model_fields["calls_alias"].default
    assert data_view["attributes"]["timeFieldName"] == "started_at"


def test_every_reference_points_at_an_object_in_the_files(objects: list[dict[str, Any]]) -> None:
    present = {(obj["type"], obj["id"]) for obj in objects}
    for obj in objects:
        names = [ref["name"] for ref in obj["references"]]
        assert len(names) == len(set(names)), f"{obj['id']}: duplicate reference names"
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in present, f"{obj['id']} → {ref}"


def test_every_reference_an_object_needs_is_there(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        named = {ref["name"]: ref for ref in obj["references"]}
        needed: dict[str, str] = {}  # reference name → the type it must have
        index_ref = search_source(obj).get("indexRefName")
        if index_ref:
            needed[index_ref] = "index-pattern"
        if obj["type"] == "search":
            assert index_ref, f"{obj['id']}: a saved search needs its data view"
        if obj["type"] == "lens":
            for layer_id in lens_layers(obj):
                needed[f"indexpattern-datasource-layer-{layer_id}"] = "index-pattern"
        if obj["type"] == "dashboard":
            for panel in dashboard_panels(obj):
                # Kibana prefixes a panel's references with its panel index.
                needed[f"{panel['panelIndex']}:{panel['panelRefName']}"] = panel["type"]
        for name, kind in needed.items():
            assert name in named, f"{obj['id']}: no reference named {name!r}"
            assert named[name]["type"] == kind, f"{obj['id']}: {name} is not a {kind}"
        assert set(named) == set(needed), f"{obj['id']}: unused references"


def test_the_dashboard_has_the_asked_panels_on_the_grid(objects: list[dict[str, Any]]) -> None:
    (dashboard,) = by_type(objects, "dashboard")
    assert set(dashboard["attributes"]) <= DASHBOARD_ATTRIBUTES
    panels = dashboard_panels(dashboard)
    targets = {
        ref["name"].split(":", 1)[0]: (ref["type"], ref["id"]) for ref in dashboard["references"]
    }
    shown = {targets[panel["panelIndex"]] for panel in panels}
    lens_titles = {obj["id"]: obj["attributes"]["title"] for obj in by_type(objects, "lens")}
    titles = {lens_titles[oid] for kind, oid in shown if kind == "lens"}
    assert {"Calls per manager", "Talk-ratio distribution", "Tracker mentions per week"} <= titles
    assert ("search", OBJECTIONS_ID) in shown

    occupied: set[tuple[int, int]] = set()
    indices = [panel["panelIndex"] for panel in panels]
    assert len(indices) == len(set(indices))
    for panel in panels:
        grid = panel["gridData"]
        assert grid["i"] == panel["panelIndex"]
        assert grid["x"] >= 0
        assert grid["w"] > 0
        assert grid["x"] + grid["w"] <= GRID_COLUMNS
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"panel {panel['panelIndex']} overlaps another"
        occupied |= cells


def test_lens_layers_are_consistent(objects: list[dict[str, Any]]) -> None:
    for lens in by_type(objects, "lens"):
        state = lens["attributes"]["state"]
        layers = lens_layers(lens)
        visualization = state["visualization"]
        vis_layers = visualization.get("layers", [visualization])
        assert {layer["layerId"] for layer in vis_layers} == set(layers), lens["id"]
        for vis_layer in vis_layers:
            columns = layers[vis_layer["layerId"]]["columns"]
            assert layers[vis_layer["layerId"]]["columnOrder"] == list(columns), lens["id"]
            accessors = list(vis_layer.get("accessors", []))
            accessors += [vis_layer[k] for k in ("xAccessor", "splitAccessor") if k in vis_layer]
            accessors += [c["columnId"] for c in vis_layer.get("columns", [])]
            assert accessors, lens["id"]
            assert set(accessors) <= set(columns), lens["id"]
            assert set(columns) <= set(accessors), f"{lens['id']}: a column is never shown"
            for column in columns.values():
                order = column.get("params", {}).get("orderBy", {})
                if order.get("type") == "column":
                    assert order["columnId"] in columns, lens["id"]
                assert column["isBucketed"] == (
                    column["operationType"] in ("terms", "date_histogram", "range")
                ), lens["id"]


# --- tests: fields ------------------------------------------------------------------------------


def test_every_field_the_objects_name_exists_in_the_mapping(
    objects: list[dict[str, Any]], mapping: dict[str, MappedField]
) -> None:
    uses = field_uses(objects)
    named = {use.field for use in uses}
    # The analytics the issue asks for, on call-level fields; the objections on utterances.
    assert {"manager.name", "metrics.talk_ratio_manager", "trackers", "started_at"} <= named
    assert {"utterances", "utterances.role", "utterances.text"} <= named
    assert field_problems(uses, mapping) == []


def test_a_renamed_field_fails_the_check(objects: list[dict[str, Any]]) -> None:
    document = json.loads(MAPPING_FILE.read_text(encoding="utf-8"))
    metrics = document["mappings"]["properties"]["metrics"]["properties"]
    metrics["manager_talk_ratio"] = metrics.pop("talk_ratio_manager")
    utterance = document["mappings"]["properties"]["utterances"]["properties"]
    utterance["speaker_role"] = utterance.pop("role")

    problems = field_problems(field_uses(objects), mapped_fields(document))

    assert any("'metrics.talk_ratio_manager' is not in" in p for p in problems)
    assert any("'utterances.role' is not in" in p for p in problems)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("utterances.text:дорого", "query it inside utterances:{ ... }"),
        ('manager:{ name:"Anna" }', "is not a nested field"),
        ("utterances:{ speaker_role:client }", "'utterances.speaker_role' is not in"),
        ("utterances:{ words:x }", "cannot be searched"),
        ("metrics.talk_ratio > 0.7", "'metrics.talk_ratio' is not in"),
    ],
)
def test_misused_fields_in_kql_are_caught(
    query: str, expected: str, mapping: dict[str, MappedField]
) -> None:
    problems = field_problems(kql_uses("probe", {"query": query, "language": "kuery"}), mapping)
    assert any(expected in problem for problem in problems), problems


def test_aggregating_a_nested_or_text_field_is_caught(
    objects: list[dict[str, Any]], mapping: dict[str, MappedField]
) -> None:
    lens = copy.deepcopy(next(obj for obj in objects if obj["id"] == "earshot-calls-per-manager"))
    column = lens_layers(lens)["managers"]["columns"]["manager"]
    column["sourceField"] = "utterances.role"
    assert "cannot aggregate" in " ".join(field_problems(field_uses([lens]), mapping))
    column["sourceField"] = "manager.name.text"
    assert "terms cannot use text" in " ".join(field_problems(field_uses([lens]), mapping))


def test_the_kql_examples_in_the_docs_name_real_fields(mapping: dict[str, MappedField]) -> None:
    readme = (KIBANA_DIR / "README.md").read_text(encoding="utf-8")
    section = readme.split("## KQL on what was said", 1)[1]
    block = section.split("```", 2)[1]
    examples = [re.split(r"\s{2,}", line.strip())[0] for line in block.splitlines()[1:]]
    assert len(examples) >= 4
    uses = [use for q in examples for use in kql_uses(q, {"query": q, "language": "kuery"})]
    assert field_problems(uses, mapping) == []


def test_kql_parser_reads_the_grammar() -> None:
    tree = parse_kql('utterances:{ role:"client" and text:(дорого or "too much") } and not x:1')
    assert tree is not None
    assert tree.op == "and"
    nested, negated = tree.children
    assert (nested.op, nested.field) == ("nested", "utterances")
    assert negated.op == "not"
    assert list(kql_fields(tree)) == [
        ("utterances", "nested", ""),
        ("utterances.role", "query", "utterances"),
        ("utterances.text", "query", "utterances"),
        ("x", "query", ""),
    ]
    for broken in ["utterances:{ role:client", "text:(a or", "a:b )", "and"]:
        with pytest.raises(KqlError):
            parse_kql(broken)


# --- the objections search, on the real Elasticsearch ------------------------------------------


def to_es(node: Node, mapping: dict[str, MappedField], path: str = "") -> dict[str, Any]:
    """The Elasticsearch query KQL builds for this tree (the subset the objects use)."""
    if node.op in ("and", "or"):
        children = [to_es(child, mapping, path) for child in node.children]
        if node.op == "and":
            return {"bool": {"filter": children}}
        return {"bool": {"should": children, "minimum_should_match": 1}}
    if node.op == "not":
        return {"bool": {"must_not": [to_es(node.children[0], mapping, path)]}}
    full = f"{path}.{node.field}" if path else node.field
    if node.op == "nested":
        inner = to_es(node.children[0], mapping, full)
        return {"nested": {"path": full, "query": inner, "score_mode": "none"}}
    if node.op == "match":
        return match_values(full, node.values)
    raise KqlError(f"{node.op} is not used by the saved objects")


def match_values(field_name: str, values: Any) -> dict[str, Any]:
    if isinstance(values, Value):
        kind = "match_phrase" if values.quoted else "match"
        return {kind: {field_name: values.text}}
    children = [match_values(field_name, child) for child in values.children]
    if values.op == "or":
        return {"bool": {"should": children, "minimum_should_match": 1}}
    if values.op == "and":
        return {"bool": {"filter": children}}
    return {"bool": {"must_not": children}}


def words(text: str) -> list[str]:
    """Roughly Elasticsearch's standard analyzer: lower-cased word characters."""
    return re.findall(r"\w+", text.lower())


@dataclass(frozen=True)
class Brute:
    """KQL evaluated on one transcript (dict), field by field, with no Elasticsearch."""

    mapping: dict[str, MappedField]

    def holds(self, node: Node, doc: dict[str, Any], path: str = "") -> bool:
        if node.op == "and":
            return all(self.holds(child, doc, path) for child in node.children)
        if node.op == "or":
            return any(self.holds(child, doc, path) for child in node.children)
        if node.op == "not":
            return not self.holds(node.children[0], doc, path)
        full = f"{path}.{node.field}" if path else node.field
        if node.op == "nested":
            return any(self.holds(node.children[0], item, full) for item in doc[node.field])
        assert node.op == "match"
        actual: Any = doc
        for part in node.field.split("."):
            actual = actual.get(part) if isinstance(actual, dict) else None
        return self.value_holds(self.mapping[full].type, node.values, actual)

    def value_holds(self, kind: str, values: Any, actual: Any) -> bool:
        if not isinstance(values, Value):
            results = [self.value_holds(kind, child, actual) for child in values.children]
            if values.op == "not":
                return not results[0]
            return any(results) if values.op == "or" else all(results)
        if kind == "keyword":
            return bool(actual == values.text)
        have, want = words(str(actual or "")), words(values.text)
        if values.quoted:  # the words in a row
            return any(have[i : i + len(want)] == want for i in range(len(have)))
        return bool(set(want) & set(have))


@pytest.fixture
def sample_calls(es: Elasticsearch, settings: Settings) -> list[dict[str, Any]]:
    summary = load_paths(
        es, settings, [SAMPLES], show_progress=False, tag=current_tagger(es, settings)
    )
    assert summary.failures == []
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(SAMPLES.glob("*.json"))]


def test_the_objections_search_finds_what_the_clients_said(
    objects: list[dict[str, Any]],
    mapping: dict[str, MappedField],
    es: Elasticsearch,
    settings: Settings,
    sample_calls: list[dict[str, Any]],
) -> None:
    (search,) = [obj for obj in objects if obj["id"] == OBJECTIONS_ID]
    tree = parse_kql(search_source(search)["query"]["query"])
    assert tree is not None

    answer = es.search(
        index=settings.calls_alias,
        query=to_es(tree, mapping),
        size=len(sample_calls),
        source_includes=["call_id"],
    )
    found = {hit["_source"]["call_id"] for hit in answer["hits"]["hits"]}
    brute = Brute(mapping)
    expected = {call["call_id"] for call in sample_calls if brute.holds(tree, call)}

    assert found == expected
    # The client's "too expensive" is found; the manager's "too expensive" alone is not.
    assert "en-0002-pricing" in found
    assert "ru-0003-furniture" in found
    assert "en-0004-salesforce-switch" not in found
