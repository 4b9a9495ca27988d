"""Benchmarks, and later recorded-crowd synthesis and replay, for lfr-cluster."""
