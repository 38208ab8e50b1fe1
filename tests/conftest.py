"""Fixtures shared by the tests; references live in references.py."""

from __future__ import annotations

import signal
import sys
import threading
import time

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def _is_core(function: object) -> bool:
    """True for a function or method of nearid's compiled core (any of its builds)."""
    module = getattr(function, "__module__", None)
    return isinstance(module, str) and module.startswith("nearid._core")


@pytest.fixture
def stops_on_ctrl_c():
    """stops_on_ctrl_c(call, work) runs call() (seconds of `work` if not interrupted),
    presses Ctrl-C once the compiled core is running it and has polled for signals,
    and checks that the KeyboardInterrupt comes out of the core within a second.

    Nothing here waits for a fixed time. A profile hook on the main thread counts the
    calls into nearid's core in progress; a helper thread, woken when one begins,
    sends SIGUSR1 as a probe, whose handler runs when the core's loop polls the
    interpreter (PyErr_CheckSignals); then the helper sends SIGINT, which the loop can
    only see at a later poll, from inside its work. The switch interval is raised for
    the duration, so the helper runs only when the main thread gives up the GIL
    (which the core's loops do and the Python code around them does not), and it
    sends a signal only while the main thread is inside a core call. So Ctrl-C never
    arrives before the work starts or after it ends, however fast or loaded the
    machine.
    """

    def check(call, work: str) -> None:
        assert threading.current_thread() is threading.main_thread(), "signals reach the main thread only"
        main = threading.get_ident()
        in_core = [0]  # calls into the core in progress on the main thread
        polled_in_core = [False]  # the probe's handler ran inside a core call
        wake = threading.Event()  # a core call began or ended, the probe was seen, or call() ended
        finished = [False]
        sent: list[float] = []
        raised_in_core: list[float] = []

        def profile(frame, event, arg) -> None:
            if event in ("c_call", "c_return", "c_exception") and _is_core(arg):
                in_core[0] += 1 if event == "c_call" else -1
                if event == "c_exception" and sent:
                    raised_in_core.append(time.perf_counter())
                wake.set()

        def probe(signum, frame) -> None:
            polled_in_core[0] = in_core[0] > 0
            wake.set()

        def interrupt() -> None:
            # This thread runs Python only while it holds the GIL: the main thread is then
            # either inside a core call that released it, or outside the core.
            probing = False
            while wake.wait():
                wake.clear()
                if finished[0]:
                    return
                if in_core[0] == 0:
                    probing = polled_in_core[0] = False
                elif not probing:
                    probing = True
                    signal.pthread_kill(main, signal.SIGUSR1)
                elif polled_in_core[0]:
                    sent.append(time.perf_counter())
                    signal.pthread_kill(main, signal.SIGINT)
                    return

        helper = threading.Thread(target=interrupt, daemon=True)
        previous_probe = signal.signal(signal.SIGUSR1, probe)
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1000.0)
        helper.start()
        sys.setprofile(profile)
        try:
            with pytest.raises(KeyboardInterrupt):
                call()
        finally:
            sys.setprofile(None)
            finished[0] = True
            wake.set()
            sys.setswitchinterval(interval)
            helper.join(timeout=10)
            signal.signal(signal.SIGUSR1, previous_probe)
        assert sent, f"{work} finished before the core polled for Ctrl-C"
        assert raised_in_core, f"the KeyboardInterrupt did not come out of nearid's core ({work})"
        assert raised_in_core[0] - sent[0] < 1.0

    return check
