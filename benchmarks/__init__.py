"""Benchmarks against named peers; `make bench` runs `python -m benchmarks.run`."""
