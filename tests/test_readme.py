"""The README's Python examples run as a user runs them: each block saved as a
script and run by a fresh interpreter in an empty directory. Where the README
states what a block gives (shapes, values, equalities), checks appended to the
script assert it. Shell and JSON blocks are not Python and are not run here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

# What the README states about each block's results, by section heading. The
# checks run at the end of the block's script, in its namespace.
STATED = {
    "A first look": """
assert Y.shape == (100_000, 8) and J.shape == (1000, 8, 8)
assert y.shape == (8,) and np.array_equal(y, Y[0])
# J[r, a, b] = d h_a / d x_b, against central differences at X[0].
step = 1e-6
columns = [(net(X[0] + step * e) - net(X[0] - step * e)) / (2 * step) for e in np.eye(8)]
assert np.allclose(J[0], np.stack(columns, axis=1), rtol=1e-6, atol=1e-8)
assert np.allclose(h(X[:5]), net(block(2.0 * X[:5])))   # Affine first, then block, then net
assert np.allclose(g(X[:5]), np.sin(X[:5]))
""",
    "Decomposing a map": """
assert dec.scales.shape == (16,) and dec.scales[-1] == 1.0 and np.all(np.diff(dec.scales) > 0)
assert len(dec.layers) == 32                      # 16 nonlinear layers, then 16 Hardt-Ma factors
c = dec.constants                                 # uniform: eps <= alpha R max(1, M) / m
assert np.isclose(dec.epsilon_bound, c.alpha * c.R * max(1.0, c.M) / 16, rtol=1e-12)
assert result.converged.all() and np.allclose(result.x, X)
assert factors.shape == (8, 2, 2)
product = np.eye(2)
for F in factors:
    product = F @ product
assert np.allclose(product, W, rtol=1e-12, atol=1e-12)    # F_8 @ ... @ F_1 == W
assert np.array_equal(same(X), dec(X)) and np.array_equal(same.scales, dec.scales)
""",
    "Measuring Lipschitz constants": """
j, k = r.pair
assert j < k and r.pairs_evaluated == 5000 * 4999 // 2
assert np.isclose(r.value, np.linalg.norm(Y[j] - Y[k]) / np.linalg.norm(X[j] - X[k]), rtol=1e-14, atol=0)  # attained
assert 0 < r.value <= 1.0                                # tanh is 1-Lipschitz
assert len(low.top) == 5 and low.value <= r.value
assert nearid.jacobian_norms(nearid.maps.FromCallable(np.tanh, 8), X[:10]).deviation.shape == (10,)
""",
    "Your own PyTorch model": """
assert [type(f).__name__ for f in net.maps] == ["Affine", "ResidualMLP", "ResidualMLP"]
assert error < 1e-12 * np.abs(reference).max()
assert len(deviations) == 2 and all(0 < v < 2 for v in deviations)
with torch.no_grad():
    assert np.allclose(module(torch.from_numpy(X)).numpy(), reference, rtol=1e-12, atol=1e-12)
""",
    "float32 end to end": """
assert Y.dtype == np.float32 and Y64.dtype == np.float64
assert rows.max() <= 12 and np.median(rows) <= 1.5       # 9.8 and 0.9 measured
assert q.gradients[0].A.dtype == np.float32
assert dec.h is net and dec.layers[0](X[:3].astype(np.float64)).dtype == np.float64
""",
    "Parameters against realizations: shallow ReLU networks": """
assert same.exact and same.value < 1e-9
assert report.opposite_pairs == ((0, 1),)
assert np.allclose(canon(np.zeros((1, 2))), 0.0, atol=1e-9)
""",
    "Distillation and the optimisation landscape": """
assert isinstance(net, nearid.maps.ResidualNet) and net.depth == len(dec.layers)
assert G.shape == (net.depth, 500, 2)
assert np.isfinite(q.loss) and len(q.gradients) == net.depth
""",
    # The block's own asserts check the pairwise result; its variables exist only in
    # the main process (LocalCluster's workers import the script again).
    "Scaling out with Dask": """
if __name__ == "__main__":
    assert np.array_equal(layers, dec.layers[3](X / 8))   # the same as in memory
""",
}

# `expression  # about 4e-6`: the README states the value to within a factor of 2.
ABOUT = re.compile(r"^(?P<expression>\S[^#]*?)\s+# about (?P<value>[0-9.]+e-?[0-9]+)\b", flags=re.MULTILINE)


def python_blocks() -> list[tuple[str, str]]:
    """(section heading, code) of every ```python block in the README, in order."""
    blocks: list[tuple[str, str]] = []
    heading, code, inside = "", [], False
    for line in README.read_text().splitlines():
        if inside:
            if line.startswith("```"):
                blocks.append((heading, "\n".join(code) + "\n"))
                inside = False
            else:
                code.append(line)
        elif line.startswith("## "):
            heading = line[3:].strip()
        elif line.strip() == "```python":
            inside, code = True, []
    return blocks


def script(heading: str, code: str) -> str:
    """The block, then checks of the values its comments state, then STATED[heading]."""
    checks = [f"value = {m['expression']}\nassert {float(m['value']) / 2!r} <= value <= {float(m['value']) * 2!r}, "
              f"('README: {m['expression']} is about {m['value']}', value)" for m in ABOUT.finditer(code)]
    return "\n".join([code, "# Checks appended by tests/test_readme.py", *checks, STATED.get(heading, "")])


BLOCKS = python_blocks()


def test_every_stated_section_has_a_python_block():
    headings = [heading for heading, _ in BLOCKS]
    assert len(BLOCKS) >= 5
    assert set(STATED) <= set(headings), set(STATED) - set(headings)
    assert any(ABOUT.search(code) for _, code in BLOCKS)  # the "about" convention is in use


@pytest.mark.parametrize("heading, code", BLOCKS, ids=[heading for heading, _ in BLOCKS])
def test_readme_block_runs_as_a_script(heading, code, tmp_path):
    if "import torch" in code:
        pytest.importorskip("torch")  # the optional extra
    path = tmp_path / "example.py"
    path.write_text(script(heading, code))
    # -W error: a warning in a README example is a defect, as it is in the test suite.
    done = subprocess.run([sys.executable, "-W", "error", str(path)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, f"README section {heading!r} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"


def test_readme_has_exactly_two_setup_commands():
    text = README.read_text()
    section = text.split("<!-- ci:setup:begin -->")[1].split("<!-- ci:setup:end -->")[0]
    commands = [line for line in section.splitlines() if line.strip() and not line.startswith("```")]
    assert len(commands) == 2
    assert "pip install '.[test]'" in commands[0] and "examples/main_job.py" in commands[0]
    assert "pytest" in commands[1]
