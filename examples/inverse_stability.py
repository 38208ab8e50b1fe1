"""Parameters against realizations in shallow ReLU networks (Berner, Elbrachter & Grohs 2019).

1. For each pathology of the parametrization, the realization distance (Sobolev, exact in 2-D)
   and the parameter distance modulo symmetries between net_t and its reference as t shrinks:
   the functions agree while the parameters run away (no inverse stability).
2. Near a net in the restricted set (balanced, no parallel or opposite neurons, every hyperplane
   through the domain), random perturbations: the parameter distance is proportional to the
   sup-norm realization distance (fitted exponent about 1, bounded ratio).
3. The same 2-D regression trained twice by gradient descent, plainly and projected onto the
   restricted set after every step: comparable final losses (the restriction loses no expressive
   power; the paths differ, since rebalancing changes the gradient steps but not the function).

Writes inverse_stability.png (log-log) when matplotlib is installed.

    python examples/inverse_stability.py
"""

from __future__ import annotations

import numpy as np

from nearid import shallow


def main() -> None:
    box = shallow.Box([-1, -1], [1, 1])
    ts = [1e-1, 1e-2, 1e-3, 1e-4]
    print("1. pathologies: realization distance (W^{1,inf}, exact) and parameter distance (modulo symmetries)")
    print(f"{'pathology':>14s} " + " ".join(f"{'t=' + format(t, 'g'):>22s}" for t in ts))
    curves = {}
    for name in shallow.pathologies:
        cells, params = [], []
        for t in ts:
            net, reference = shallow.pathology(name, t)
            realization = shallow.realization_distance(net, reference, box, "sobolev").value
            parameter = shallow.parameter_distance(net, reference).distance
            cells.append(f"{realization:8.1e} / {parameter:10.3g}")
            params.append(parameter)
        curves[name] = params
        print(f"{name:>14s} " + " ".join(f"{c:>22s}" for c in cells))
    print("   inverse_stability at t = 0.1 (moves along the degeneracies keep the function):")
    for name in shallow.pathologies:
        net, _ = shallow.pathology(name, 0.1)
        print(f"   {name:>14s}: max parameter / realization ratio "
              f"{shallow.inverse_stability(net, box, norm='sup', n_perturbations=8).max_ratio:.3g}")

    print("\n2. near a restricted net: parameter ~ C * realization^p over 32 random perturbations")
    rng = np.random.default_rng(1)
    net = shallow.balance(shallow.ShallowReLU(rng.standard_normal((6, 2)), 0.1 * rng.standard_normal(6),
                                              rng.standard_normal(6)))
    print(f"   restricted: {shallow.restricted(net, box)}; {shallow.degeneracies(net, box)}")
    stable = shallow.inverse_stability(net, box, norm="sup")
    print(f"   sup norm:      {stable}")
    print(f"   Sobolev norm:  {shallow.inverse_stability(net, box)}  (moving a kink costs O(1) in W^{{1,inf}})")

    print("\n3. training on a 2-D target, plain and projected onto the restricted set")
    X = rng.uniform(-1, 1, (1000, 2))
    y = np.sin(2 * X[:, 0]) * X[:, 1] + 0.5 * np.abs(X[:, 0] - X[:, 1])
    start = shallow.ShallowReLU(rng.standard_normal((40, 2)), 0.5 * rng.standard_normal(40),
                                0.1 * rng.standard_normal(40))
    plain = shallow.train(start, X, y, steps=1000, lr=0.05)
    projected = shallow.train(start, X, y, steps=1000, lr=0.05, project=box)
    print(f"   plain:     {plain}; restricted at the end: {shallow.restricted(plain.net, box)}")
    print(f"   projected: {projected}; restricted at the end: {shallow.restricted(projected.net, box)}")
    print(f"   {shallow.degeneracies(plain.net, box)} (plain)")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, params in curves.items():
        left.loglog(ts, params, "o-", label=name)
    left.set_xlabel("t (realization distance 0 for every t)")
    left.set_ylabel("parameter distance modulo symmetries")
    left.set_title("pathologies")
    left.legend()
    right.loglog(stable.realization_distances, stable.parameter_distances, "o")
    right.set_xlabel("sup |f - f_perturbed|")
    right.set_ylabel("parameter distance")
    right.set_title(f"restricted net: slope {stable.exponent:.2f}")
    fig.tight_layout()
    fig.savefig("inverse_stability.png", dpi=100)
    print("\nwrote inverse_stability.png")


if __name__ == "__main__":
    main()
