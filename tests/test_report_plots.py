"""What the report's plots say: the bound's status in the legend, ticks at the m
used, reference lines labelled as slopes, the deviation method named, layers
numbered from 1 and every grid panel's coordinates on its axes."""

from __future__ import annotations

import numpy as np
import pytest

import nearid
from nearid.app import demo, report

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture(scope="module")
def built():
    return report.build_report(demo.planar_map(), 6, center=demo.PLANAR_CENTER, n_samples=300, sweep=(2, 4, 8))


def legend_texts(figure):
    return [t.get_text() for t in figure.axes[0].get_legend().get_texts()]


def test_deviations_plot_names_the_bound_by_its_status(built):
    result, dec = built
    figure = report._deviations_figure(plt, result, dec)
    labels = legend_texts(figure)
    assert "estimated bound (sample constants), uniform schedule" in labels
    assert not any(label.startswith("proven bound,") for label in labels)
    assert "proven bound on the factors" in labels  # Hardt-Ma's bound is a theorem about J0
    assert figure.axes[0].get_xlabel() == "layer: h_1..h_6, then F_1..F_6"
    first_x = figure.axes[0].get_lines()[0].get_xdata()
    assert first_x[0] == 1 and first_x[-1] == 6
    plt.close(figure)
    proven, dec = report.build_report(demo.planar_map(), 6, center=demo.PLANAR_CENTER, n_samples=300,
                                      constants={"alpha": 0.2, "M": 1.2})
    figure = report._deviations_figure(plt, proven, dec)
    assert "proven bound, uniform schedule" in legend_texts(figure)
    plt.close(figure)


def test_sweep_plot_ticks_at_the_m_used_and_labels_its_reference_slopes(built):
    result, _ = built
    figure = report._sweep_figure(plt, result)
    axes = figure.axes[0]
    assert list(axes.get_xticks()) == [2.0, 4.0, 8.0]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["2", "4", "8"]
    labels = legend_texts(figure)
    assert "slope -1: c / m through the first uniform point" in labels
    assert "c log(2m) / m through the first theorem point" in labels
    lines = {line.get_label(): line for line in axes.get_lines()}
    reference = lines["slope -1: c / m through the first uniform point"].get_ydata()
    uniform = lines["uniform schedule"].get_ydata()
    assert reference[0] == uniform[0] and np.allclose(reference * [2, 4, 8], 2 * uniform[0])
    assert "(jacobian)" in axes.get_title() and "(jacobian)" in axes.get_ylabel()
    plt.close(figure)


def test_grid_panels_say_which_coordinates_they_show(built):
    _, dec = built
    figure = report._grid_figure(plt, dec)
    labels = [(ax.get_xlabel(), ax.get_ylabel()) for ax in figure.axes]
    assert labels[0] == ("$x_1$", "$x_2$")
    assert all(x == "$u_1$ (normalised)" and y == "$u_2$" for x, y in labels[1:-1])
    assert labels[-1] == ("$y_1$", "$y_2$")
    titles = [ax.get_title() for ax in figure.axes]
    assert titles[1].startswith("after h_1..h_") and titles[-1] == "after h_1..h_6, F_1..F_6 (= h)"
    plt.close(figure)


def test_no_sweep_means_no_sweep_plot(tmp_path):
    result, dec = report.build_report(nearid.maps.ResidualNet.random(3, 4, 2, 0.3, seed=0), 4, n_samples=200)
    assert result["sweep"] is None
    written = report.write_report(result, dec, tmp_path)
    assert written == ["deviations.png", "report.json"]
