"""Benchmarks of framequeue on this machine: `make bench` (bench/run.py) writes BENCHMARKS.md."""
