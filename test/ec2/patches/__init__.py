"""Patches to moto, one topic a module; server.py imports each and calls its apply(knobs)."""
