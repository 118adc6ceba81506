"""Transcript → index: the index definitions and versions (``definitions``), the document of a
call (``documents``), loading (``loader``), the transcript store (``store``), zero-downtime
reindex (``reindex``) and deletion with tombstones (``deletion``).

It uses the search rules (``indexer.search``) to lay out terms, never the trackers: the
per-call tagger is passed in by whoever loads (``indexer.trackers.tagging.current_tagger``).
"""
