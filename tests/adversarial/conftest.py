"""Control planes started by these tests are stopped by ``tests/support/operator.py``'s
autouse ``no_stray_control_planes`` fixture, like every other test's."""
