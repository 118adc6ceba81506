"""Every error Earshot raises on purpose, in one place.

    EarshotError
    ├── TranscriptError        a transcript file or record does not match the contract
    ├── SearchBackendError     Elasticsearch cannot be reached or refused a request
    │   └── SearchTimeoutError Elasticsearch did not answer in time
    ├── IndexVersionError      the calls index was built by an older mapping: reindex first
    │   └── RedactionPolicyError   ... or under another redaction policy than the settings say
    ├── ReindexError           a new index version failed a check; the alias was not moved
    ├── CallNotFoundError      no call with that id in the index or the transcript store
    ├── QueryError             a search query the user typed cannot be understood
    ├── TrackerNotFoundError   no tracker with that id
    ├── TrackerConflictError   a tracker (or vocabulary term) with that id exists, or too many
    ├── JobNotFoundError       no tracker job with that id
    ├── VocabularyTermNotFoundError  no vocabulary term with that id
    ├── AudioError             a recording cannot be decoded or is unusable
    └── AsrModelError          the configured ASR model cannot be used (missing, no CUDA)

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


class SearchTimeoutError(SearchBackendError):
    """Elasticsearch ran out of its time budget (the API answers 504, never a partial page)."""


class IndexVersionError(EarshotError):
    """Writing into an index of another schema version would be refused document by document."""


class RedactionPolicyError(IndexVersionError):
    """Each index version holds calls redacted under one policy (its ``_meta.redaction``);
    loading under another would leave the index half-redacted."""


class ReindexError(EarshotError):
    """The new index failed a check; the alias was left untouched."""


class CallNotFoundError(EarshotError):
    """A call id that neither the index nor the transcript store holds (e.g. for a delete)."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        super().__init__(f"no call with id '{call_id}'")


class QueryError(EarshotError):
    def __init__(self, message: str, position: int | None = None) -> None:
        self.message = message
        self.position = position
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{message}{where}")


class TrackerNotFoundError(EarshotError):
    def __init__(self, tracker_id: str) -> None:
        self.tracker_id = tracker_id
        super().__init__(f"no tracker with id '{tracker_id}'")


class JobNotFoundError(EarshotError):
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"no job with id '{job_id}'")


class TrackerConflictError(EarshotError):
    """Creating the tracker would clash with the stored ones (its id, or their number)."""


class VocabularyTermNotFoundError(EarshotError):
    def __init__(self, term_id: str) -> None:
        self.term_id = term_id
        super().__init__(f"no vocabulary term with id '{term_id}'")


class AudioError(EarshotError):
    def __init__(self, source: str, message: str) -> None:
        self.source = source
        self.message = message
        super().__init__(f"{source}: {message}")


class AsrModelError(EarshotError):
    """The configured model cannot be used (missing directory, unreadable weights, no CUDA)."""
