"""The search language: what a user types, parsed into a query tree Earshot can run.

Syntax (docs/query-language.md has the full description and examples)::

    query     := or
    or        := and ("OR" and)*
    and       := unary (["AND"] unary)*          two operands side by side mean AND
    unary     := "NOT" unary | windowed
    windowed  := scoped ["WITHIN" ("first" | "last") DURATION]     e.g. WITHIN first 30s
    scoped    := ROLE ":" scoped | near          ROLE: manager, client (also менеджер, клиент)
    near      := atom ["NEAR/" N atom]           both operands words or phrases
    atom      := "(" or ")" | WORD | WORD* | "PHRASE"

A word, a "phrase", a prefix (``достав*``) or ``a NEAR/n b`` is a *match*: it must occur inside
one utterance (of its role, in its time window). ``AND``, ``OR`` and ``NOT`` combine matches over
the *whole call*: ``client:"дорого" AND NOT manager:"скидка"`` is a call where the client said
"дорого" and the manager never said "скидка". Operators are upper case; lower-case "and", "or",
"not" are ordinary words. A role or a time window written before or after a group applies to
every match inside it.

User text never reaches Elasticsearch as query syntax: matches carry terms made by the same rules as
the transcripts (``indexer.search.text``), and ``indexer.search.compiler`` builds the Elasticsearch
query.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal

from indexer.errors import QueryError
from indexer.search.text import terms_of_text

QUOTES = {'"': '"', "«": "»", "“": "”", "„": "“"}
ROLE_NAMES = {"manager": "manager", "client": "client", "менеджер": "manager", "клиент": "client"}
MIN_PREFIX_LENGTH = 2
MAX_NEAR = 50
MAX_WINDOW_S = 3600  # the range of second tokens an interval filter may expand to
MAX_DEPTH = 16
_NEAR = re.compile(r"^NEAR/(\d+)$")
_DURATION = re.compile(r"^(\d+)\s*(s|sec|secs|seconds?|m|min|mins|minutes?)?$", re.IGNORECASE)


class RoleFilter(StrEnum):
    MANAGER = "manager"
    CLIENT = "client"
    ANY = "any"


class Mode(StrEnum):
    """``exact``: the words as said. ``forms``: any form of the words (цена → цены, ценой).
    ``variants``: the words as said, or written in the other script (salesforce → сейлсфорс).
    In every mode a number typed in digits also finds it said in words, and a term of the
    company vocabulary finds each of its listed spellings."""

    EXACT = "exact"
    FORMS = "forms"
    VARIANTS = "variants"


@dataclass(frozen=True, slots=True)
class Window:
    """The match must start within the first ``seconds`` of the call, or end within the last."""

    edge: Literal["first", "last"]
    seconds: int


@dataclass(frozen=True, slots=True)
class Pattern:
    """Consecutive terms; with ``prefix`` the last one only has to start with its text."""

    terms: tuple[str, ...]
    prefix: bool = False

    @property
    def width(self) -> int:
        return len(self.terms)


@dataclass(frozen=True, slots=True)
class Near:
    """Both patterns in one utterance, in either order, at most ``gap`` words between them."""

    left: Pattern
    right: Pattern
    gap: int


@dataclass(frozen=True, slots=True)
class Match:
    """Something said inside one utterance: the query tree's leaf."""

    what: Pattern | Near
    role: RoleFilter = RoleFilter.ANY
    mode: Mode = Mode.EXACT
    window: Window | None = None
    typed: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Match | And | Or | Not


def matches(node: Node, *, positive: bool = True) -> Iterator[tuple[Match, bool]]:
    """Every match of the tree, with whether it counts positively (is not under a NOT)."""
    if isinstance(node, Match):
        yield node, positive
    elif isinstance(node, Not):
        yield from matches(node.item, positive=not positive)
    else:
        for item in node.items:
            yield from matches(item, positive=positive)


# --- Tokens --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["word", "phrase", "(", ")", "AND", "OR", "NOT", "NEAR", "WITHIN", "role", "end"]
    text: str
    position: int
    end: int
    number: int = 0


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    at = 0
    while at < len(text):
        char = text[at]
        if char.isspace():
            at += 1
        elif char in "()":
            tokens.append(_Token(char, char, at, at + 1))  # type: ignore[arg-type]
            at += 1
        elif char in QUOTES:
            closing = QUOTES[char]
            end = text.find(closing, at + 1)
            if end < 0:
                raise QueryError(f"unclosed quote: expected {closing}", position=at)
            tokens.append(_Token("phrase", text[at + 1 : end], at, end + 1))
            at = end + 1
        else:
            end = at
            while end < len(text) and not (
                text[end].isspace() or text[end] in "()" or text[end] in QUOTES
            ):
                end += 1
            tokens.extend(_bare_tokens(text[at:end], at))
            at = end
    tokens.append(_Token("end", "", len(text), len(text)))
    return _join_digit_groups(tokens)


def _bare_tokens(run: str, at: int) -> list[_Token]:
    head, colon, rest = run.partition(":")
    if colon and head.casefold() in ROLE_NAMES:
        role = _Token("role", ROLE_NAMES[head.casefold()], at, at + len(head) + 1)
        return [role, *(_bare_tokens(rest, at + len(head) + 1) if rest else [])]
    if run in ("AND", "OR", "NOT", "WITHIN"):
        return [_Token(run, run, at, at + len(run))]  # type: ignore[arg-type]
    near = _NEAR.match(run)
    if near:
        return [_Token("NEAR", run, at, at + len(run), number=int(near.group(1)))]
    if run == "NEAR" or run.startswith("NEAR/"):
        raise QueryError("expected NEAR/<number of words>, e.g. NEAR/5", position=at)
    if "*" in run.rstrip("*"):
        raise QueryError("* may only end a word (a prefix such as достав*)", position=at)
    if not terms_of_text(run.rstrip("*")) and not run.endswith("*"):
        return []  # punctuation only: nothing to search for
    return [_Token("word", run, at, at + len(run))]


def _join_digit_groups(tokens: list[_Token]) -> list[_Token]:
    """``15 000`` typed without quotes is one number, not two numbers that must both occur."""
    joined: list[_Token] = []
    for token in tokens:
        previous = joined[-1] if joined else None
        if (
            previous is not None
            and previous.kind == token.kind == "word"
            and not previous.text.endswith("*")
            and not token.text.endswith("*")
            and len(terms_of_text(previous.text)) == len(terms_of_text(token.text)) == 1
            and len(terms_of_text(f"{previous.text} {token.text}")) == 1
        ):
            joined[-1] = _Token(
                "word", f"{previous.text} {token.text}", previous.position, token.end
            )
            continue
        joined.append(token)
    return joined


# --- Parser --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Scoped:
    role: RoleFilter
    item: _Raw
    position: int


@dataclass(frozen=True, slots=True)
class _Windowed:
    window: Window
    item: _Raw
    position: int


@dataclass(frozen=True, slots=True)
class _RawAnd:
    items: tuple[_Raw, ...]


@dataclass(frozen=True, slots=True)
class _RawOr:
    items: tuple[_Raw, ...]


@dataclass(frozen=True, slots=True)
class _RawNot:
    item: _Raw


_Raw = Match | _Scoped | _Windowed | _RawAnd | _RawOr | _RawNot

_STARTS_OPERAND = {"word", "phrase", "(", "NOT", "role"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0
        self.depth = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def fail(self, expected: str) -> QueryError:
        token = self.token
        found = "the end of the query" if token.kind == "end" else f"'{token.text}'"
        return QueryError(f"expected {expected}, found {found}", position=token.position)

    def query(self) -> _Raw:
        node = self.or_()
        if self.token.kind != "end":
            raise self.fail("an operator (AND, OR) or the end of the query")
        return node

    def or_(self) -> _Raw:
        items = [self.and_()]
        while self.token.kind == "OR":
            self.take()
            items.append(self.and_())
        return items[0] if len(items) == 1 else _RawOr(tuple(items))

    def and_(self) -> _Raw:
        items = [self.unary()]
        while self.token.kind == "AND" or self.token.kind in _STARTS_OPERAND:
            if self.token.kind == "AND":
                self.take()
            items.append(self.unary())
        return items[0] if len(items) == 1 else _RawAnd(tuple(items))

    def unary(self) -> _Raw:
        if self.token.kind == "NOT":
            self.take()
            return _RawNot(self.unary())
        return self.windowed()

    def windowed(self) -> _Raw:
        item = self.scoped()
        if self.token.kind != "WITHIN":
            return item
        within = self.take()
        edge = self.take()
        if edge.kind != "word" or edge.text.casefold() not in ("first", "last"):
            self.at -= 1
            raise self.fail("'first' or 'last' after WITHIN")
        seconds = self.duration()
        return _Windowed(Window(edge.text.casefold(), seconds), item, within.position)  # type: ignore[arg-type]

    def duration(self) -> int:
        start = self.token
        if start.kind != "word":
            raise self.fail("a duration such as 30s or 2m")
        self.take()
        text = start.text
        # "30 s" typed with a space: the unit is the next word.
        if text.isdigit() and self.token.kind == "word" and _DURATION.match(f"0{self.token.text}"):
            text += self.take().text
        found = _DURATION.match(text)
        if not found:
            self.at -= 1
            raise self.fail("a duration such as 30s or 2m")
        unit = (found.group(2) or "s").casefold()
        seconds = int(found.group(1)) * (60 if unit.startswith("m") else 1)
        if not 1 <= seconds <= MAX_WINDOW_S:
            raise QueryError(
                f"a time window must be 1 s to {MAX_WINDOW_S // 60} min", position=start.position
            )
        return seconds

    def scoped(self) -> _Raw:
        if self.token.kind != "role":
            return self.near()
        role = self.take()
        if self.token.kind not in ("word", "phrase", "(", "role"):
            raise self.fail(f"a word, phrase or ( after {role.text}:")
        return _Scoped(RoleFilter(role.text), self.scoped(), role.position)

    def near(self) -> _Raw:
        first = self.token
        left = self.atom()
        if self.token.kind != "NEAR":
            return left
        operator = self.take()
        right = self.atom()
        if not (
            isinstance(left, Match)
            and isinstance(right, Match)
            and isinstance(left.what, Pattern)
            and isinstance(right.what, Pattern)
        ):
            raise QueryError("NEAR joins two words or phrases", position=operator.position)
        if operator.number > MAX_NEAR:
            raise QueryError(f"NEAR allows at most {MAX_NEAR} words", position=operator.position)
        if self.token.kind == "NEAR":
            raise QueryError("NEAR joins exactly two words or phrases", self.token.position)
        typed = self.text[first.position : self.tokens[self.at - 1].end]
        return Match(Near(left.what, right.what, operator.number), typed=typed)

    def atom(self) -> _Raw:
        token = self.token
        if token.kind == "(":
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise QueryError(f"more than {MAX_DEPTH} nested parentheses", token.position)
            node = self.or_()
            if self.token.kind != ")":
                raise self.fail("')'")
            self.take()
            self.depth -= 1
            return node
        if token.kind == "phrase":
            self.take()
            terms = terms_of_text(token.text)
            if not terms:
                raise QueryError("empty phrase: expected words between the quotes", token.position)
            return Match(Pattern(tuple(terms)), typed=token.text)
        if token.kind == "word":
            self.take()
            return Match(self.word(token), typed=token.text)
        raise self.fail('a word, a "phrase" or (')

    def word(self, token: _Token) -> Pattern:
        if not token.text.endswith("*"):
            # A bare token such as "e-mail" can hold several terms; they must occur together.
            return Pattern(tuple(terms_of_text(token.text)))
        stem = terms_of_text(token.text.rstrip("*"))
        if not stem or len(stem[-1]) < MIN_PREFIX_LENGTH or not token.text[-2:-1].isalnum():
            raise QueryError(
                f"a prefix needs at least {MIN_PREFIX_LENGTH} letters before *", token.position
            )
        return Pattern(tuple(stem), prefix=True)


# --- Resolving roles, windows and mode into the matches --------------------------------------


def _resolve(
    node: _Raw, role: RoleFilter | None, window: Window | None, default_role: RoleFilter, mode: Mode
) -> Node:
    if isinstance(node, Match):
        return replace(node, role=role or default_role, window=window, mode=mode)
    if isinstance(node, _Scoped):
        if role is not None and role is not node.role:
            raise QueryError(f"{node.role}: inside {role}: asks for two roles", node.position)
        return _resolve(node.item, node.role, window, default_role, mode)
    if isinstance(node, _Windowed):
        if window is not None:
            raise QueryError("a time window inside another time window", node.position)
        return _resolve(node.item, role, node.window, default_role, mode)
    if isinstance(node, _RawNot):
        return Not(_resolve(node.item, role, window, default_role, mode))
    items = tuple(_resolve(item, role, window, default_role, mode) for item in node.items)
    return And(items) if isinstance(node, _RawAnd) else Or(items)


def _negation_normal_form(node: Node) -> Node:
    """NOT pushed down onto matches (De Morgan), so every match is plainly positive or negated:
    Elasticsearch returns no inner hits from inside a ``must_not``, so a match that counts
    positively must not sit under one (``NOT (a AND NOT b)`` becomes ``NOT a OR b``)."""
    if isinstance(node, Match):
        return node
    if isinstance(node, Not):
        inner = node.item
        if isinstance(inner, Match):
            return node
        if isinstance(inner, Not):
            return _negation_normal_form(inner.item)
        flipped = [_negation_normal_form(Not(item)) for item in inner.items]
        return _flat(Or if isinstance(inner, And) else And, flipped)
    return _flat(type(node), [_negation_normal_form(item) for item in node.items])


def _flat(kind: type[And] | type[Or], items: list[Node]) -> Node:
    """``a AND (b AND c)`` is ``a AND b AND c``."""
    spliced: list[Node] = []
    for item in items:
        spliced.extend(item.items if isinstance(item, kind) else [item])
    return kind(tuple(spliced))


def parse_query(
    text: str,
    *,
    role: RoleFilter = RoleFilter.ANY,
    mode: Mode = Mode.EXACT,
    max_length: int = 500,
    max_matches: int = 20,
) -> Node:
    """Parse the search box; raise QueryError naming the position and what was expected.

    ``role`` applies to every match the query does not give a role itself, ``mode`` to all.
    """
    if len(text) > max_length:
        raise QueryError(f"query is longer than {max_length} characters", position=max_length)
    parser = _Parser(text)
    if parser.token.kind == "end":
        raise QueryError("query has no searchable words")
    tree = _negation_normal_form(_resolve(parser.query(), None, None, role, mode))
    count = sum(1 for _ in matches(tree))
    if count > max_matches:
        raise QueryError(f"query has more than {max_matches} words, phrases and NEARs")
    return tree
