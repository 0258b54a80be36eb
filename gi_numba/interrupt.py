"""Ctrl-C as a request, not an exception: long loops stop between iterations and keep their work.

Python raises ``KeyboardInterrupt`` wherever the interpreter happens to be,
and inside a Numba-compiled function that leaves the dispatcher with "a
result with an exception set" (a ``SystemError`` that loses the fit). So while
a fit, an encode or a folder runs, :func:`catching_sigint` replaces the SIGINT
handler with one that only records the request; the loops ask
:func:`requested` between iterations and stop cleanly. The previous handler is
restored afterwards, so Ctrl-C outside such a section behaves as usual.

Where SIGINT is ignored (a worker process whose parent handles Ctrl-C, a
background job) it stays ignored; off the main thread no handler can be set
and nothing changes.
"""

import contextlib
import signal
import threading

_state = {"requested": False, "depth": 0}


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C after keeping what it had done; the message says what that is."""


def requested() -> bool:
    """Whether Ctrl-C was pressed since the outermost :func:`catching_sigint` began."""
    return _state["requested"]


def request() -> None:
    """Record a stop request, as Ctrl-C does (for callers that stop a run themselves, and tests)."""
    _state["requested"] = True


def _record(signum, frame):
    request()


def ignore_sigint() -> None:
    """Ignore Ctrl-C in this process (a worker: its parent stops it), so it stays ignored here."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def catching_sigint():
    """Within this block Ctrl-C sets :func:`requested` instead of raising; blocks may nest."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    outermost = _state["depth"] == 0
    previous = signal.getsignal(signal.SIGINT)
    if outermost:
        _state["requested"] = False
        if previous is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, _record)
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if outermost:
            signal.signal(signal.SIGINT, previous)


def interruptible_range(iterations):
    """``1 .. iterations`` for a training loop, ending early once Ctrl-C was pressed.

    The check sits between iterations, never inside compiled code. A loop
    ended by it has run fewer than ``iterations``: that is how its caller
    tells that it was interrupted.
    """
    with catching_sigint():
        for iteration in range(1, iterations + 1):
            yield iteration
            if requested():
                return
