"""Shared fixtures: the real cluster tier (tests/support/cluster.py) and the operator process."""

pytest_plugins = ["tests.support.cluster", "tests.support.operator"]
