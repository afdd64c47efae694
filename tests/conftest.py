"""Shared fixtures; the cluster tier's fixtures live in tests/support/cluster.py."""

pytest_plugins = ["tests.support.cluster"]
