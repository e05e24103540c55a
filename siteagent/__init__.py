"""Joliba site agent: compress, queue durably and push studies over a weak link (no Django)."""
