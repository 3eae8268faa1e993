"""Metrics and benchmarks (Tables 1-3, Fig. 8)."""
