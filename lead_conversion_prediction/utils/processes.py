"""Child processes that end with their parent: the pipeline's workers and lcp serve's."""

from __future__ import annotations


def die_with_parent(parent: int) -> None:
    """Make this process end when ``parent`` does, even when it is killed with SIGKILL.

    On Linux the kernel sends SIGKILL at the parent's death (``PR_SET_PDEATHSIG``); elsewhere,
    and as a second guard, a thread notices that the parent is gone. The resource tracker of
    multiprocessing then exits too: its pipe closes with this process.
    """
    import ctypes
    import ctypes.util
    import os
    import signal
    import sys
    import threading

    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the guard was set
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
