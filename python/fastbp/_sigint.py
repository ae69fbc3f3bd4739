"""Ctrl-C during :meth:`fastbp.Network.fit`: the core's epochs stop between batches.

Python runs signal handlers only between bytecodes, so a SIGINT that arrives while an
epoch runs in C++ would wait for the epoch to end. While :func:`watch` is on, a C-level
handler counts SIGINTs (see ``csrc/nn/interrupt.hpp``), and an epoch given the count from
before (the *mark*) stops before its next batch once the count has moved. Around each
core call and the counting of its steps, :class:`Held` keeps Python's handler from
raising, then raises the KeyboardInterrupt itself, so no interrupt falls between a call
and its bookkeeping. :class:`Deferred` holds SIGINT across a block that must run whole
(writing a file and cleaning up after it) and delivers it again as the block ends.
"""

from __future__ import annotations

import signal
import threading

from . import _core

#: The mark of a call that never stops.
UNWATCHED = -1


def watch() -> int:
    """Start counting SIGINTs for the core; the mark for its calls. Only on Python's main
    thread (the one that receives KeyboardInterrupt) and while SIGINT has Python's
    default handler: a handler of the user's own keeps its say, and a Ctrl-C then takes
    effect when the core call ends, as before (:data:`UNWATCHED`). End with
    :func:`unwatch`."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        return UNWATCHED
    _core.watch_sigint(True)
    return _core.sigint_count()


def unwatch(mark: int) -> None:
    """End :func:`watch` (which gave ``mark``)."""
    if mark != UNWATCHED:
        _core.watch_sigint(False)


class Held:
    """A block (a core call and the counting of its steps) in which no SIGINT raises; a
    SIGINT that came during it raises KeyboardInterrupt as the block ends, unless another
    exception leaves it."""

    def __init__(self, mark: int):
        self.mark = mark

    def __enter__(self) -> None:
        if self.mark != UNWATCHED:
            _core.hold_sigint(True)

    def __exit__(self, kind, error, traceback) -> None:
        if self.mark != UNWATCHED:
            _core.hold_sigint(False)
            if kind is None and _core.sigint_count() != self.mark:
                raise KeyboardInterrupt


class Deferred:
    """A block that a SIGINT cannot cut short: on Python's main thread (the only one that
    runs signal handlers) a SIGINT during it is held, then delivered again to whatever
    handler is installed as the block ends, however it ends; so with Python's default
    handler a KeyboardInterrupt then replaces any exception of the block. Elsewhere
    nothing is deferred, since nothing raises there. The hold is the counting handler's:
    a handler set in front of it during a fit (see :func:`watch`) is not held."""

    def __enter__(self) -> None:
        self._deferring = threading.current_thread() is threading.main_thread()
        if self._deferring:
            _core.defer_sigint()  # raises, deferring nothing, for a SIGINT from before

    def __exit__(self, kind, error, traceback) -> None:
        if self._deferring and _core.resume_sigint():
            signal.raise_signal(signal.SIGINT)
