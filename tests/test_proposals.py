"""Tests of minidl.detection.proposals: sliding windows, selective search's grouping, proposal recall."""
import importlib.util
import sys

import numpy as np
import pytest

from minidl.data import ShapesDataset
from minidl.detection import (best_overlaps, hierarchical_grouping, proposal_recall, selective_search,
                              sliding_window_proposals)


# ---- sliding windows -----------------------------------------------------------------------------

def test_sliding_window_grid_by_hand():
    # 32×32 image, 16×16 windows, stride 8: x1, y1 ∈ {0, 8, 16} → 9 windows
    boxes = sliding_window_proposals(32, scales=[16], aspect_ratios=[1.0], stride=8)
    assert boxes.shape == (9, 4) and boxes.dtype == np.float32
    np.testing.assert_array_equal(np.unique(boxes[:, 0]), [0, 8, 16])
    np.testing.assert_array_equal(boxes[:, 2:] - boxes[:, :2], np.full((9, 2), 16))
    # stride 10: 0, 10 and a last window flush with the border at 16 → still 3 × 3
    boxes = sliding_window_proposals((32, 32), [16], [1.0], stride=10)
    np.testing.assert_array_equal(np.unique(boxes[:, 1]), [0, 10, 16])
    # aspect ratio h/w = 4 at scale 16: 8 wide, 32 high (= the image height) → 1 row of x1 ∈ {0, 8, 16, 24}
    boxes = sliding_window_proposals(32, [16], [4.0], stride=8)
    np.testing.assert_array_equal(boxes, [[x, 0, x + 8, 32] for x in (0, 8, 16, 24)])
    # a window larger than the image shrinks to it
    np.testing.assert_array_equal(sliding_window_proposals(20, [64], [1.0], stride=4), [[0, 0, 20, 20]])


def test_sliding_window_per_scale_stride_and_errors():
    boxes = sliding_window_proposals(64, scales=[16, 32], aspect_ratios=[1.0], stride=[16, 32])
    assert len(boxes) == 16 + 4
    with pytest.raises(ValueError, match="stride"):
        sliding_window_proposals(64, scales=[16, 32], stride=[8])
    with pytest.raises(ValueError, match="stride"):
        sliding_window_proposals(64, stride=0)


# ---- recall ------------------------------------------------------------------------------------

def test_proposal_recall_by_hand():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    proposals = np.array([[0, 0, 10, 9],        # IoU 90/100 = 0.9 with the first box
                          [20, 20, 25, 30]])    # IoU 50/100 = 0.5 with the second
    np.testing.assert_allclose(best_overlaps(proposals, gt), [0.9, 0.5])
    assert proposal_recall(proposals, gt, 0.5) == 1.0       # IoU ≥ threshold counts
    assert proposal_recall(proposals, gt, 0.6) == 0.5
    # pooled over images: 2 of the 3 boxes covered
    assert proposal_recall([proposals, np.zeros((0, 4))], [gt, np.array([[0, 0, 5, 5]])]) == pytest.approx(2 / 3)
    assert np.isnan(proposal_recall(proposals, np.zeros((0, 4))))
    with pytest.raises(ValueError, match="same images"):
        proposal_recall([proposals], [gt, gt])


# ---- selective search ----------------------------------------------------------------------------

needs_skimage = pytest.mark.skipif(importlib.util.find_spec("skimage") is None,
                                   reason="selective search needs scikit-image (minidl[data])")


@needs_skimage
def test_grouping_merges_similar_neighbours_first_and_ends_with_the_image():
    # 4 superpixels in quadrants; the two left ones are red, the two right ones blue.
    labels = np.zeros((16, 16), np.int64)
    labels[:8, 8:], labels[8:, :8], labels[8:, 8:] = 1, 2, 3
    colour = np.zeros((16, 16, 3))
    colour[:, :8, 0] = 1.0
    colour[:, 8:, 2] = 1.0
    boxes = hierarchical_grouping(labels, colour, measures="C")
    assert boxes.shape == (7, 4)                                   # R superpixels + R - 1 merges
    np.testing.assert_array_equal(boxes[:4], [[0, 0, 8, 8], [8, 0, 16, 8], [0, 8, 8, 16], [8, 8, 16, 16]])
    # the first two merges join the same-coloured halves, the last one gives the whole image
    assert {tuple(b) for b in boxes[4:6]} == {(0, 0, 8, 16), (8, 0, 16, 16)}
    np.testing.assert_array_equal(boxes[6], [0, 0, 16, 16])
    with pytest.raises(ValueError, match="measures"):
        hierarchical_grouping(labels, colour, measures="CX")


@needs_skimage
def test_selective_search_finds_an_isolated_object_on_a_plain_background():
    image = np.full((3, 64, 64), 0.5, dtype=np.float32)
    image[:, 20:40, 12:44] = np.array([0.9, 0.1, 0.1])[:, None, None]     # a red 32×20 rectangle
    boxes = selective_search(image, mode="single")
    assert best_overlaps(boxes, [[12, 20, 44, 40]])[0] >= 0.9
    assert boxes.dtype == np.float32 and boxes.shape[1] == 4


@needs_skimage
def test_selective_search_output_is_ranked_unique_capped_and_reproducible():
    image, target = ShapesDataset(1, 64, seed=11)[0]
    boxes = selective_search(image, mode="fast", max_proposals=50, rng=3)
    assert 0 < len(boxes) <= 50
    assert len(np.unique(boxes, axis=0)) == len(boxes)
    assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2:] <= 64) and np.all(boxes[:, 2:] > boxes[:, :2])
    np.testing.assert_array_equal(boxes, selective_search(image, mode="fast", max_proposals=50, rng=3))
    with pytest.raises(ValueError, match="image"):
        selective_search(image.transpose(1, 2, 0))
    with pytest.raises(ValueError, match="mode"):
        selective_search(image, mode="slow")


@needs_skimage
def test_selective_search_covers_shapes_objects():
    dataset = ShapesDataset(6, 64, seed=5)
    proposals, gts = [], []
    for image, target in (dataset[i] for i in range(len(dataset))):
        proposals.append(selective_search(image, mode="single", min_size=20))
        gts.append(target["boxes"])
    assert proposal_recall(proposals, gts, 0.5) >= 0.8


def test_missing_scikit_image_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage.segmentation", None)
    with pytest.raises(ImportError, match=r"pip install minidl\[data\]"):
        selective_search(np.zeros((3, 16, 16), np.float32))
