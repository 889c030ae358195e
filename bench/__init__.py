"""Benchmarks: each measures the platform against a baseline taken in the same run."""
