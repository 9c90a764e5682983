"""Benchmarks comparing nanosession with nanobot's own session manager (run ``benchmarks.run``)."""
