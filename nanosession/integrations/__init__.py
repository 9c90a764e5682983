"""Adapters that let agent frameworks keep their sessions in any nanosession store.

Each adapter imports its framework lazily: nanosession never depends on a framework.
"""
