"""Benchmarks: each compares against the peer a user would pick instead, in the same run."""
