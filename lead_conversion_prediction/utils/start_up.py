"""The command's start-up, with Python's cyclic garbage collector paused.

Before ``lcp predict`` scores its first lead it imports pandas, scikit-learn (and SciPy) and
perhaps MLflow, and loads a model: millions of objects that live as long as the process. The
collector would walk them again and again while they are made, about a fifth of the time a
user waits for 1,000 leads. The console entry point pauses it (:func:`pause_collector`); once
the model is loaded (``scoring/model.py``) or the server is about to serve (``stages/serve.py``),
:func:`resume_collector` moves what start-up made out of the collector's sight
(``gc.freeze``) and turns it on again. A command that never says its start-up is over gets the
collector back ``START_UP_SECONDS`` after it started, so no long run goes without it.
"""

from __future__ import annotations

import gc
import threading

START_UP_SECONDS = 5.0
_guard: list[threading.Timer] = []


def pause_collector() -> None:
    """Pause the cyclic collector for the start-up, at most ``START_UP_SECONDS``."""
    gc.disable()
    guard = threading.Timer(START_UP_SECONDS, resume_collector)
    guard.daemon = True
    guard.start()
    _guard.append(guard)


def resume_collector() -> None:
    """End the start-up: freeze what it made and turn the collector on (once; a no-op when
    it was never paused, as in a test that runs a command in its own process)."""
    while _guard:
        _guard.pop().cancel()
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
