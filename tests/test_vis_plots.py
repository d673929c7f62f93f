"""Tests of minidl.vis.plots: grids are laid out right and every helper returns a Figure that
renders headless without touching pyplot's global figures."""
import io

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib", reason="plots need matplotlib")
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.offsetbox import AnnotationBbox  # noqa: E402

from minidl import Tensor  # noqa: E402
from minidl.vis.plots import image_grid, plot_embedding, show_filter_grid, show_image_grid  # noqa: E402


def renders(fig):
    """The figure draws to a PNG (Agg) — the check that nothing in it is broken."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue().startswith(b"\x89PNG")


def test_image_grid_places_each_image_in_its_cell():
    rng = np.random.default_rng(0)
    images = rng.random((10, 3, 4, 5))
    grid = image_grid(images, nrow=4, padding=2, pad_value=0.5)
    assert grid.shape == (3 * (4 + 2) + 2, 4 * (5 + 2) + 2, 3)     # 3 rows of 4
    for i in range(10):
        top, left = 2 + (i // 4) * 6, 2 + (i % 4) * 7
        np.testing.assert_array_equal(grid[top:top + 4, left:left + 5], images[i].transpose(1, 2, 0))
    assert np.all(grid[:2] == 0.5) and np.all(grid[-6:, 2 + 2 * 7:] == 0.5)  # padding and empty cells


def test_image_grid_normalizes_per_image_or_per_batch():
    images = np.stack([np.linspace(0, 1, 16).reshape(1, 4, 4), np.linspace(-5, 20, 16).reshape(1, 4, 4)])
    each = image_grid(images, nrow=2, padding=0, normalize=True, scale_each=True)
    for tile in (each[:, :4], each[:, 4:]):
        assert tile.min() == 0.0 and tile.max() == 1.0
        np.testing.assert_array_equal(tile[..., 0], tile[..., 2])     # grey -> equal channels
    batch = image_grid(images, nrow=2, padding=0, normalize=True)
    assert batch.min() == 0.0 and batch.max() == 1.0 and batch[:, :4].max() < 0.25
    fixed = image_grid(images[:1], padding=0, normalize=True, value_range=(0, 2))
    assert fixed.max() == 0.5
    grey = image_grid(Tensor(np.ones((2, 3, 3), dtype=np.float32)), padding=0)  # (N, H, W) Tensor
    assert grey.shape == (3, 6, 3)
    with pytest.raises(ValueError, match="images must have shape"):
        image_grid(np.zeros((2, 4, 3, 3)))
    with pytest.raises(ValueError, match="nrow"):
        image_grid(images, nrow=0)


def test_figures_are_returned_rendered_and_not_registered_with_pyplot():
    import matplotlib.pyplot as plt
    before = plt.get_fignums()
    rng = np.random.default_rng(1)
    figures = [
        show_image_grid(rng.random((6, 3, 8, 8)), nrow=3, title="grid"),
        show_filter_grid(rng.normal(size=(16, 3, 5, 5)), title="conv1"),
        show_filter_grid(rng.normal(size=(4, 8, 3, 3)), max_channels=6),
        plot_embedding(rng.normal(size=(30, 2)), rng.integers(0, 3, 30), class_names=["a", "b", "c"]),
    ]
    for fig in figures:
        assert isinstance(fig, Figure) and renders(fig)
    assert plt.get_fignums() == before
    # a non-RGB layer: one row per filter, one column per (kept) input channel
    ax = figures[2].axes[0]
    assert ax.images[0].get_array().shape[:2] == (4 * 4 + 1, 6 * 4 + 1)


def test_plot_embedding_draws_classes_and_non_overlapping_thumbnails():
    rng = np.random.default_rng(2)
    points = np.concatenate([rng.normal(0, 1, (40, 2)), rng.normal(10, 1, (40, 2))])
    labels = np.repeat([0, 1], 40)
    fig = plot_embedding(points, labels, images=rng.random((80, 1, 6, 6)), class_names=["cat", "dog"],
                         max_thumbnails=12)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["cat", "dog"]
    assert len(ax.collections) == 2                                      # one scatter per class
    thumbs = [a for a in ax.artists if isinstance(a, AnnotationBbox)]
    assert 2 <= len(thumbs) <= 12
    anchors = np.array([t.xy for t in thumbs])
    gaps = np.linalg.norm(anchors[:, None] - anchors[None], axis=2) + np.eye(len(anchors)) * 1e9
    assert gaps.min() > 0.5                                             # spread out, not piled
    assert renders(fig)
    with pytest.raises(ValueError, match="points must have shape"):
        plot_embedding(points[:, :1], labels)
    with pytest.raises(ValueError, match="one image per point"):
        plot_embedding(points, labels, images=rng.random((5, 1, 6, 6)))
