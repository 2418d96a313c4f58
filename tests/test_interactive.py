"""The book's interactive figures: matplotlib's JavaScript player, self-contained offline."""
import re

import numpy as np
import pytest
from matplotlib.figure import Figure

from ssae import theory
from ssae_book import plots


def frames(html: str) -> int:
    """Number of frames embedded in a player as PNG data."""
    return len(re.findall(r'frames\[\d+\] = "data:image/png;base64,', html))


def assert_offline_player(html: str, n_frames: int):
    assert "<script" in html and 'type="range"' in html              # a player with a slider
    assert frames(html) == n_frames
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # no script or link from the network
    assert "font-awesome" not in html and '<i class="fa' not in html       # no icon font either
    assert len(html) < 2_000_000


def test_fig6_slider():
    ts = [-0.5, 0.0, 0.5, 1.2, 1.8]
    html, still = plots.fig6_slider(ts=ts, sbar_dists=(1.0, 1.3))
    assert_offline_player(html, len(ts))
    assert isinstance(still, Figure)
    assert len([ax for ax in still.axes if ax.axison]) == len(ts)           # one panel per frame
    titles = [ax.get_title() for ax in still.axes if ax.axison]
    assert "case2" in titles[0] and "both" in titles[1] and "none" in titles[3]
    assert "equality: fails" in titles[3] and "slack 1.3: holds" in titles[3]


@pytest.fixture(scope="module")
def sweeps():
    rng = np.random.default_rng(0)
    fractions = [0.05, 0.3, 0.6]
    return {"uniform field": theory.pair_distances(theory.uniform_field(rng, 8, 24, 1.5), fractions, 12, rng,
                                                   sigma2=1 / 12),
            "noise": theory.pair_distances(rng.random((5, 24, 24)), fractions, 12, rng)}


def test_theorem2_sweep(sweeps):
    html, still = plots.theorem2_sweep(sweeps, label="test")
    assert_offline_player(html, 3)
    assert isinstance(still, Figure)
    assert len(still.axes) == 2 * 2 * 3                       # per data set and frame: the region S, the pairs
    titles = [ax.get_title() for ax in still.axes]
    c = sweeps["noise"].counts()
    assert f"{c.violations[-1]}/12 violate" in titles
