"""The locks that serialise the calls on one network, from every Python thread, and
their release in a forked child."""

from __future__ import annotations

import functools
import os
import threading
import weakref
from collections.abc import Callable


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


# ---- a forked child ---------------------------------------------------------------
# A thread of the parent that was inside a call on a network at os.fork() left that
# network's locks held, and it does not exist in the child to release them: the child
# frees them (its kernel pool's workers are restarted by csrc/kernels/threads.cpp).

_RELEASES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def free_in_forked_children(owner, release: Callable[[object], None]) -> None:
    """Have ``release(owner)`` called in every child of ``os.fork`` while ``owner``
    lives."""
    _RELEASES[owner] = release


def free_in_child(lock):
    """``lock`` (a :func:`threading.RLock`) if this thread may take it, else a new one:
    in a forked child, a thread that is not there held it. The forking thread's own hold
    is kept, so its later release still matches its acquire."""
    if lock.acquire(blocking=False):
        lock.release()
        return lock
    return threading.RLock()


def _after_fork_in_child() -> None:
    for owner, release in list(_RELEASES.items()):
        release(owner)


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
