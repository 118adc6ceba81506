"""Transcription: audio in, transcripts of the contract in ``indexer.transcript`` out."""
