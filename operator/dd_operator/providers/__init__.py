"""Providers: each cloud behind a narrow Protocol declared in ``base``.

``build_vm_provider`` / ``build_edge_provider`` are the only places that pick an
implementation; adapters import their SDK lazily so the local default needs none.
"""
