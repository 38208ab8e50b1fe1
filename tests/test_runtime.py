"""Package-level behaviour: build variants, threads, Ctrl-C, version."""

from __future__ import annotations

import time

import numpy as np
import pytest
from references import assert_close

import nearid
from nearid import _native
from nearid.maps import ResidualNet


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


def test_ctrl_c_interrupts_a_long_evaluation_within_a_second(send_ctrl_c):
    net = ResidualNet.random(8, 16, 3000, 0.1, seed=0)
    X = np.random.default_rng(0).standard_normal((200_000, 8))
    sent = send_ctrl_c(0.3)
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        net(X)  # about 10 s of work if not interrupted
    stopped = time.perf_counter()
    assert sent, "the evaluation finished before the interrupt was sent"
    assert stopped - sent[0] < 1.0
    assert stopped - start < 2.0
