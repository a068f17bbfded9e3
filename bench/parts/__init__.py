"""Benchmark parts: one module per area, each with `run(ctx)` (see bench/core.py)."""
