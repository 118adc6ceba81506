"""Earshot's indexing side: the transcript contract, transcription, and loading into Elasticsearch."""
