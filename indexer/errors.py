"""Every error Earshot raises on purpose, in one place.

    EarshotError
    ├── TranscriptError        a transcript file or record does not match the contract
    ├── SearchBackendError     Elasticsearch cannot be reached or refused a request
    ├── IndexVersionError      the calls index was built by an older mapping: reindex first
    ├── ReindexError           a new index version failed a check; the alias was not moved
    ├── QueryError             a search query the user typed cannot be understood
    └── AudioError             a recording cannot be decoded or is unusable

Callers catch the branch they can handle; the CLI and the API turn each into a clear message
(and an HTTP status), never a stack trace.
"""

from __future__ import annotations


class EarshotError(Exception):
    """Base of all deliberate Earshot errors."""


class TranscriptError(EarshotError):
    def __init__(self, source: str, field: str, message: str) -> None:
        self.source = source
        self.field = field
        self.message = message
        super().__init__(f"{source}: {field}: {message}")


class SearchBackendError(EarshotError):
    """Elasticsearch is unreachable, or answered with an error we cannot recover from."""


class IndexVersionError(EarshotError):
    """Writing into an index of another schema version would be refused document by document."""


class ReindexError(EarshotError):
    """The new index failed a check; the alias was left untouched."""


class QueryError(EarshotError):
    def __init__(self, message: str, position: int | None = None) -> None:
        self.message = message
        self.position = position
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{message}{where}")


class AudioError(EarshotError):
    def __init__(self, source: str, message: str) -> None:
        self.source = source
        self.message = message
        super().__init__(f"{source}: {message}")
