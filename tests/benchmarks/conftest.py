"""Benchmarks: run with `make bench`; each prints its figure as a ratio to a peer in the same run."""
