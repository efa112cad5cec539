"""Benchmarks of lakelib's jobs against what a user would otherwise run (``make bench``, see BENCHMARKS.md)."""
