"""Earshot's indexing side: the transcript contract, transcription, loading into Elasticsearch."""
