"""The ``dd-preview`` exit codes: one meaning each, so a workflow can branch on them.

==  ==========  ===========================================================================
0   OK          done: applied, deleted, nothing to do, or (``wait``) ready
1   FAILED      the environment failed permanently, or the apiserver refused the request
                (invalid object, forbidden, immutable field changed)
2   USAGE       bad flags, or the event file is missing / not a ``pull_request`` event
3   TIMEOUT     ``wait`` gave up before the environment became ready
4   NOT_FOUND   the PreviewEnvironment does not exist
5   REFUSED     policy refused the event (a fork PR without ``--allow-forks``)
6   UNREACHABLE the Kubernetes API could not be reached or answered 5xx: re-run the job
==  ==========  ===========================================================================
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    TIMEOUT = 3
    NOT_FOUND = 4
    REFUSED = 5
    UNREACHABLE = 6
