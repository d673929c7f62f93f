"""Lecture-12 activation techniques: occlusion, features for neighbours, maximally activating patches."""
import numpy as np
import pytest

from minidl import Tensor, nn
from minidl.vis import extract_features, max_activating_patches, nearest_neighbors, occlusion_heatmap
from minidl.vis.occlusion import _starts


def matched_filter_model(template):
    """Flatten → Linear with class 1 = the template (a detector of the object), class 0 = 0."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(template.size, 2))
    model[1].weight.data = np.stack([np.zeros(template.size), template.ravel()]).astype(np.float32)
    model[1].bias.data = np.zeros(2, np.float32)
    return model


def test_occlusion_lowers_score_most_where_the_object_is():
    rng = np.random.default_rng(0)
    image = (0.1 * rng.random((3, 24, 24))).astype(np.float32)
    image[:, 14:20, 4:10] = 1.0                             # the object: rows 14..19, cols 4..9
    template = np.zeros_like(image)
    template[:, 14:20, 4:10] = 1.0
    model = matched_filter_model(template)
    for score in ("logit", "probability"):
        result = occlusion_heatmap(model, image, 1, patch_size=6, stride=2, fill_value=0.0, score=score,
                                   batch_size=7)
        ys, xs = result.positions
        iy, ix = np.unravel_index(np.argmin(result.heatmap), result.heatmap.shape)
        assert (ys[iy], xs[ix]) == (14, 4)                    # the occluder exactly on the object
        assert result.heatmap.min() < result.baseline
        # the per-pixel drop is largest on the object and zero far from it
        drop = result.pixel_drop
        assert drop[14:20, 4:10].mean() > 5 * drop[:8, 14:].mean() + 1e-9
        assert np.allclose(drop[:8, 14:], 0, atol=1e-6)


def test_occlusion_batching_and_positions_and_mean_fill():
    rng = np.random.default_rng(1)
    image = rng.random((1, 10, 13)).astype(np.float32)
    model = nn.Sequential(nn.Flatten(), nn.Linear(130, 3, rng=rng))
    a = occlusion_heatmap(model, image, 2, patch_size=4, stride=3, batch_size=1, score="logit")
    b = occlusion_heatmap(model, image, 2, patch_size=4, stride=3, batch_size=100, score="logit")
    np.testing.assert_allclose(a.heatmap, b.heatmap, rtol=1e-5, atol=1e-6)   # BLAS rounding differs by batch
    assert a.positions == ([0, 3, 6], [0, 3, 6, 9])       # the last start touches the border
    assert _starts(10, 4, 4) == [0, 4, 6]
    # one position by hand, with the per-channel mean as fill
    c = occlusion_heatmap(model, image, 2, patch_size=4, stride=3, fill_value="mean", score="logit")
    occluded = image.copy()
    occluded[:, 3:7, 6:10] = image.mean()
    expected = model(Tensor(occluded[None])).data[0, 2]
    assert c.heatmap[1, 2] == pytest.approx(float(expected), rel=1e-5)


def test_occlusion_checks_arguments():
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 2))
    image = np.zeros((3, 4, 4), np.float32)
    with pytest.raises(ValueError, match="patch_size"):
        occlusion_heatmap(model, image, 0, patch_size=5)
    with pytest.raises(ValueError, match="one image"):
        occlusion_heatmap(model, image[None], 0)
    with pytest.raises(ValueError, match="score"):
        occlusion_heatmap(model, image, 0, patch_size=2, score="prob")


def test_extract_features_matches_forward_and_feeds_neighbours():
    rng = np.random.default_rng(2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 6, rng=rng), nn.ReLU(), nn.Linear(6, 2, rng=rng))
    images = rng.random((7, 3, 2, 2)).astype(np.float32)
    feats = extract_features(model, images, "2", batch_size=3)
    assert feats.shape == (7, 6)
    np.testing.assert_allclose(feats, model[:3](Tensor(images)).data, rtol=1e-6)
    np.testing.assert_allclose(extract_features(model, images), model(Tensor(images)).data, rtol=1e-6)
    _, idx = nearest_neighbors(feats, feats, 1)
    assert (idx[:, 0] == np.arange(7)).all()


def test_max_activating_patches_are_the_top_units_and_their_receptive_fields():
    rng = np.random.default_rng(3)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 5, 3, padding=1, rng=rng), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 16, 2, rng=rng))
    images = rng.random((6, 3, 8, 8)).astype(np.float32)
    patches = max_activating_patches(model, images, "4", channel=2, k=5, batch_size=4)
    acts = model[:5](Tensor(images)).data[:, 2]                     # (6, 4, 4)
    assert [p.activation for p in patches] == pytest.approx(sorted(acts.ravel(), reverse=True)[:5])
    rf = vis_rf(model, "4")
    assert rf.size == (8, 8) and rf.jump == (2, 2)
    for p in patches:
        assert acts[p.image_index, p.y, p.x] == pytest.approx(p.activation)
        x1, y1, x2, y2 = p.box
        np.testing.assert_array_equal(p.pixels, images[p.image_index, :, y1:y2, x1:x2])
        # the defining property of a receptive field: pixels outside the box cannot change the unit
        changed = images[p.image_index].copy()
        outside = np.ones(changed.shape[1:], bool)
        outside[y1:y2, x1:x2] = False
        changed[:, outside] = rng.random((3, outside.sum()))
        after = model[:5](Tensor(changed[None])).data[0, 2, p.y, p.x]
        assert after == pytest.approx(p.activation, rel=1e-5)

    # one_per_image: each image's strongest unit, the k images ranked by it — no near-copies
    best = max_activating_patches(model, images, "4", channel=2, k=4, one_per_image=True)
    per_image = acts.reshape(6, -1).max(axis=1)
    assert [p.image_index for p in best] == list(np.argsort(-per_image, kind="stable")[:4])
    assert [p.activation for p in best] == pytest.approx(sorted(per_image, reverse=True)[:4])
    for p in best:
        assert acts[p.image_index, p.y, p.x] == pytest.approx(p.activation)


def vis_rf(model, layer):
    from minidl.vis import receptive_field_of
    return receptive_field_of(model, layer)


def test_max_activating_patches_checks():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    images = np.zeros((2, 3, 6, 6), np.float32)
    with pytest.raises(ValueError, match="channel"):
        max_activating_patches(model, images, "1", channel=9)
    with pytest.raises(ValueError, match="not a leaf layer"):
        max_activating_patches(model, images, "7", channel=0)
