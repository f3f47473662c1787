"""Peer services the benchmarks measure cronwell against (benchmark-only code)."""
