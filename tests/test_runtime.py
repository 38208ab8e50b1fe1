"""Package-level behaviour: build variants, threads, Ctrl-C, version."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

import nearid
from nearid import _native
from nearid.maps import ResidualNet
from references import assert_close


def available_variants():
    variants = []
    for name in ("baseline", "avx2", "avx512"):
        try:
            variants.append(_native.load(name))
        except (RuntimeError, ImportError):
            pass
    return variants


def test_version_and_flags():
    assert isinstance(nearid.__version__, str) and nearid.__version__
    assert isinstance(nearid.has_openmp, bool)
    assert nearid.cpu_variant in ("baseline", "avx2", "avx512")
    assert nearid.get_num_threads() >= 1


def test_unknown_variant_is_rejected():
    with pytest.raises(ValueError, match="NEARID_CPU must be one of auto, avx512, avx2, baseline; got 'sse9'"):
        _native.load("sse9")


def test_build_variants_agree(rng):
    """Every build this CPU runs computes the same function (FMA changes only the last bits)."""
    net = ResidualNet.random(7, 13, 6, 0.6, seed=21)
    params = [b._params() for b in net.blocks]
    X = rng.standard_normal((1001, 7))
    reference_values = net(X)
    reference_jacobians = net.jacobian(X)
    for module, name in available_variants():
        impl = module.ResidualNet(params)
        assert_close(impl.forward(X), reference_values, 1e-14)
        assert_close(impl.jacobian(X).reshape(-1, 7, 7), reference_jacobians, 1e-14)


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "softplus"])
def test_build_variants_agree_on_activations(act):
    z = np.concatenate([np.linspace(-40, 40, 4001), [0.0, -0.0, 1e-300, -1e-300, 745.0, -745.0, 1000.0, -1000.0]])
    base = _native.load("baseline")[0]
    for module, name in available_variants():
        values = np.array([module.activation_value(act, t) for t in z])
        expected = np.array([base.activation_value(act, t) for t in z])
        assert np.allclose(values, expected, rtol=8 * np.finfo(float).eps, atol=0.0), name


def test_ctrl_c_interrupts_a_long_evaluation_within_a_second(stops_on_ctrl_c):
    net = ResidualNet.random(8, 16, 3000, 0.1, seed=0)
    X = np.random.default_rng(0).standard_normal((200_000, 8))
    stops_on_ctrl_c(lambda: net(X), "the evaluation (about 10 s of work)")


# ---------------------------------------------------------------- processes and threads


def _evaluate_in_child(seed):
    net = ResidualNet.random(6, 16, 4, 0.3, seed=1)
    X = np.random.default_rng(seed).standard_normal((20_000, 6))
    return float(net(X).sum()), nearid.get_num_threads()


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")  # Python >= 3.12 warns about fork with threads
def test_forked_children_work_after_a_parallel_kernel_ran():
    """The OpenMP runtime's threads do not survive fork(): a child of a process that had
    run a parallel kernel used to hang forever in its first nearid call (the default
    multiprocessing start method on Linux, PyTorch DataLoader workers)."""
    import multiprocessing

    net = ResidualNet.random(6, 16, 4, 0.3, seed=1)
    X = np.random.default_rng(0).standard_normal((20_000, 6))
    with nearid.num_threads(2):
        expected = float(net(X).sum())  # the parent's thread pool now exists
    with multiprocessing.get_context("fork").Pool(2) as pool:
        result = pool.map_async(_evaluate_in_child, [0, 0, 0, 0])
        values = result.get(timeout=60)
    assert [v for v, _ in values] == [expected] * 4  # bitwise: any thread count gives the same
    assert {threads for _, threads in values} == {1}  # serial until the child sets its threads


def test_a_forked_child_that_sets_its_threads_runs_them():
    code = """
import os, signal, sys
import numpy as np
import nearid
from nearid.maps import ResidualNet
net = ResidualNet.random(6, 16, 4, 0.3, seed=1)
X = np.random.default_rng(0).standard_normal((50_000, 6))
expected = net(X)
pid = os.fork()
if pid == 0:
    signal.alarm(60)  # a hung child is killed by SIGALRM (Python leaves its default action)
    nearid.set_num_threads(2)  # a fresh pool: teams start from a new thread of the child
    ok = nearid.get_num_threads() == 2 and np.array_equal(net(X), expected)
    with nearid.num_threads(2):
        ok = ok and np.array_equal(net.jacobian(X[:500]), nearid.maps.ResidualNet(net.blocks).jacobian(X[:500]))
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    # The child's exit code: 0 when it ran its threads and matched; 3 on a wrong result;
    # -14 (SIGALRM) when it hung.
    assert (done.returncode, done.stdout.strip()) == (0, "0"), done.stderr[-2000:]


def test_thread_counts_belong_to_the_thread_that_sets_them():
    """num_threads(k) changed a process-global setting, so concurrent Python threads changed
    each other's counts."""
    barrier = threading.Barrier(2)
    seen: dict[str, list[int]] = {"a": [], "b": []}

    def worker(name, k):
        with nearid.num_threads(k):
            barrier.wait()  # both overrides are in place
            for _ in range(50):
                seen[name].append(nearid.get_num_threads())
            barrier.wait()

    threads = [threading.Thread(target=worker, args=("a", 1)), threading.Thread(target=worker, args=("b", 2))]
    default = nearid.get_num_threads()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert seen["a"] == [1] * 50 and seen["b"] == [2] * 50
    assert nearid.get_num_threads() == default


def test_thread_count_arguments_are_bounded():
    with pytest.raises(ValueError, match="n must be <= 4096"):
        nearid.set_num_threads(2**40)
    with pytest.raises(ValueError, match="n must be >= 1"):
        with nearid.num_threads(0):
            pass
    with pytest.raises(TypeError, match="n must be an integer"):
        nearid.set_num_threads("2")  # type: ignore[arg-type]
    nearid.set_num_threads(np.int64(0))  # numpy integers are fine; 0 restores the default


def test_ctrl_c_interrupts_a_wide_jacobian_within_a_second(stops_on_ctrl_c):
    """One point of a d = 1500 Jacobian is seconds of work inside a single tile."""
    net = ResidualNet.random(1500, 1500, 2, 0.1, seed=0)
    X = np.random.default_rng(0).standard_normal((16, 1500))
    stops_on_ctrl_c(lambda: net.jacobian(X), "the Jacobian")
