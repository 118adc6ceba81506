"""Benchmark tooling for scripts/gen-corpus, scripts/bench-ingest and scripts/bench-search.

Not part of the product (``indexer`` and ``api`` never import it): it generates synthetic calls,
drives load and turns timings into percentiles. Results and how to reproduce them are in
docs/benchmarks.md.
"""
