"""Fixtures shared by the tests; references live in references.py."""

from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def send_ctrl_c():
    """send_ctrl_c(seconds) sends SIGINT (Ctrl-C) to the main thread after `seconds`
    from a helper thread; the returned list receives the time it was sent."""

    def start(seconds: float) -> list[float]:
        main = threading.main_thread().ident
        assert main is not None
        sent: list[float] = []

        def interrupt() -> None:
            time.sleep(seconds)
            sent.append(time.perf_counter())
            signal.pthread_kill(main, signal.SIGINT)

        threading.Thread(target=interrupt, daemon=True).start()
        return sent

    return start


@pytest.fixture
def stops_on_ctrl_c(send_ctrl_c):
    """stops_on_ctrl_c(call, work) runs call() (seconds of `work` if not interrupted),
    presses Ctrl-C after 0.3 s and checks that KeyboardInterrupt arrives within a second
    of it and within 3 s of the start."""

    def check(call, work: str) -> None:
        sent = send_ctrl_c(0.3)
        start = time.perf_counter()
        with pytest.raises(KeyboardInterrupt):
            call()
        stopped = time.perf_counter()
        assert sent, f"{work} finished before the interrupt was sent"
        assert stopped - sent[0] < 1.0
        assert stopped - start < 3.0

    return check
