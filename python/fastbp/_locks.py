"""The locks that serialise the calls on one network, from every Python thread."""

from __future__ import annotations

import functools


def serialised(lock: str):
    """A decorator running a method under the re-entrant lock its object keeps in the
    attribute ``lock``."""
    def decorate(method):
        @functools.wraps(method)
        def locked(self, *args, **kwargs):
            with getattr(self, lock):
                return method(self, *args, **kwargs)

        return locked

    return decorate
