"""Tests of minidl.data: the shapes generator's labels, determinism, DataLoader, transforms, loaders."""
import sys

import numpy as np
import pytest

from minidl.data import (POSE_FLIP_PERMUTATION, POSE_KEYPOINT_NAMES, SHAPE_CLASSES, DataLoader, ShapesDataset,
                         Subset, TensorDataset, default_collate, mask_to_box, random_split)
from minidl.data import registry
from minidl.data import transforms as T
from minidl.autograd import Tensor


def _samples(mode, n, size, seed=0):
    ds = ShapesDataset(n, size, mode=mode, seed=seed)
    return ds, [ds[i] for i in range(n)]


# ---- the generator's labels --------------------------------------------------------------------

def _check_box_is_tight(box, mask):
    """Every mask pixel lies inside the box, and each of the 4 box edges touches a mask pixel."""
    rows, cols = np.nonzero(mask)
    x1, y1, x2, y2 = box
    assert cols.min() >= x1 and cols.max() + 1 <= x2 and rows.min() >= y1 and rows.max() + 1 <= y2
    assert mask[:, int(x1)].any() and mask[:, int(x2) - 1].any()
    assert mask[int(y1), :].any() and mask[int(y2) - 1, :].any()


@pytest.mark.parametrize("mode,size", [("scene", 64), ("scene", 96), ("single", 64), ("pose", 64), ("pose", 80)])
def test_generator_labels_are_consistent(mode, size):
    ds, samples = _samples(mode, 25, size, seed=3)
    for image, target in samples:
        assert image.shape == (3, size, size) and image.dtype == np.float32
        assert 0.0 <= image.min() and image.max() <= 1.0
        k = len(target["labels"])
        assert 1 <= k <= (4 if mode == "scene" else 1)
        assert target["boxes"].shape == (k, 4) and target["boxes"].dtype == np.float32
        assert target["masks"].shape == (k, size, size) and target["masks"].dtype == bool
        assert target["labels"].dtype == np.int64 and np.all(target["labels"] < ds.num_classes)
        semantic = target["semantic_mask"]
        assert semantic.shape == (size, size) and semantic.dtype == np.int64
        # instance masks are disjoint and their union is exactly the foreground of the semantic mask
        assert target["masks"].sum(axis=0).max() <= 1
        np.testing.assert_array_equal(target["masks"].any(axis=0), semantic > 0)
        for label, box, mask, kps in zip(target["labels"], target["boxes"], target["masks"], target["keypoints"]):
            assert mask.sum() >= 12
            _check_box_is_tight(box, mask)
            assert np.all(semantic[mask] == label + 1)
            labelled = kps[:, 2] > 0
            assert set(np.unique(kps[:, 2])) <= {0.0, 1.0, 2.0}
            assert np.all(kps[~labelled] == 0)
            assert np.all((kps[labelled, 0] >= 0) & (kps[labelled, 0] <= size))
            assert np.all((kps[labelled, 1] >= 0) & (kps[labelled, 1] <= size))
            # a keypoint lying inside its object: VISIBLE ⇔ its pixel belongs to the visible mask
            inside = range(len(kps)) if mode == "pose" else [0]      # shapes: only the centre is inside
            for p in inside:
                col, row = int(kps[p, 0]), int(kps[p, 1])
                assert kps[p, 2] in (1, 2)
                assert mask[row, col] == (kps[p, 2] == 2)


def test_scene_keypoint_counts_follow_the_shape():
    ds, samples = _samples("scene", 30, 64, seed=5)
    expected = {"circle": 1, "square": 5, "triangle": 4, "ellipse": 5, "star": 6}
    seen = set()
    for _, target in samples:
        for label, kps in zip(target["labels"], target["keypoints"]):
            name = SHAPE_CLASSES[label]
            seen.add(name)
            assert (kps[:, 2] > 0).sum() == expected[name]
    assert seen == set(SHAPE_CLASSES)          # 30 scenes show every class


def test_pose_left_side_is_on_the_image_right():
    # The figure faces the viewer, so its left shoulder/hip are drawn right of its right ones.
    _, samples = _samples("pose", 20, 64, seed=1)
    ls, rs = POSE_KEYPOINT_NAMES.index("left_shoulder"), POSE_KEYPOINT_NAMES.index("right_shoulder")
    lh, rh = POSE_KEYPOINT_NAMES.index("left_hip"), POSE_KEYPOINT_NAMES.index("right_hip")
    for _, target in samples:
        kps = target["keypoints"][0]
        assert kps.shape == (14, 3)
        assert kps[ls, 0] > kps[rs, 0] and kps[lh, 0] > kps[rh, 0]


def test_generator_is_deterministic_per_seed_and_index():
    a = ShapesDataset(10, 64, seed=7)
    b = ShapesDataset(10, 64, seed=7)
    image_b9, target_b9 = b[9]                 # generated out of order: must not matter
    image_a9, target_a9 = a[9]
    np.testing.assert_array_equal(image_a9, image_b9)
    for key in ("labels", "boxes", "masks", "semantic_mask", "keypoints"):
        np.testing.assert_array_equal(target_a9[key], target_b9[key])
    assert not np.array_equal(a[3][0], a[4][0])                          # another index, another image
    assert not np.array_equal(a[3][0], ShapesDataset(10, 64, seed=8)[3][0])  # another seed, too
    np.testing.assert_array_equal(a[-1][0], image_a9)


def test_classes_subset_and_target_keys():
    ds = ShapesDataset(8, 48, seed=0, classes=("circle", "square"), target_keys=("labels", "boxes"))
    assert ds.num_classes == 2
    for image, labels, boxes in (ds[i] for i in range(8)):
        assert image.shape == (3, 48, 48) and set(labels.tolist()) <= {0, 1} and boxes.shape == (len(labels), 4)
    image, mask = ShapesDataset(2, 32, target_keys="semantic_mask")[0]
    assert mask.shape == (32, 32)


def test_shapes_dataset_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        ShapesDataset(4, 64, mode="video")
    with pytest.raises(ValueError, match="size"):
        ShapesDataset(4, 8)
    with pytest.raises(ValueError, match="classes"):
        ShapesDataset(4, 64, classes=("hexagon",))
    with pytest.raises(IndexError):
        ShapesDataset(4, 64)[4]


def test_mask_to_box_uses_continuous_pixel_coordinates():
    mask = np.zeros((6, 8), dtype=bool)
    mask[2, 3] = True                          # one pixel: row 2, column 3 → box (3, 2, 4, 3)
    np.testing.assert_array_equal(mask_to_box(mask), [3, 2, 4, 3])
    mask[4, 6] = True
    np.testing.assert_array_equal(mask_to_box(mask), [3, 2, 7, 5])


# ---- datasets and the DataLoader ---------------------------------------------------------------

def test_tensor_dataset_subset_and_random_split():
    x, y = np.arange(20).reshape(10, 2), np.arange(10)
    ds = TensorDataset(x, Tensor(y))
    assert len(ds) == 10 and ds[3][0].tolist() == [6, 7] and ds[3][1] == 3
    with pytest.raises(ValueError, match="first dimension"):
        TensorDataset(x, np.arange(9))
    with pytest.raises(IndexError):
        ds[10]
    sub = Subset(ds, [4, 1])
    assert len(sub) == 2 and sub[1][1] == 1
    parts = random_split(ds, [7, 3], rng=0)
    indices = [i for p in parts for i in p.indices]
    assert [len(p) for p in parts] == [7, 3] and sorted(indices) == list(range(10))
    assert [p.indices for p in random_split(ds, [7, 3], rng=0)] == [p.indices for p in parts]
    assert [len(p) for p in random_split(ds, [0.5, 0.3, 0.2], rng=1)] == [5, 3, 2]
    assert [len(p) for p in random_split(TensorDataset(np.arange(11)), [0.5, 0.5], rng=1)] == [6, 5]
    with pytest.raises(ValueError):
        random_split(ds, [5, 4])


def test_dataloader_batches_and_drop_last():
    ds = TensorDataset(np.arange(10, dtype=np.float32).reshape(10, 1), np.arange(10))
    batches = list(DataLoader(ds, batch_size=4))
    assert len(DataLoader(ds, batch_size=4)) == 3 and len(batches) == 3
    assert batches[0][0].shape == (4, 1) and batches[2][0].shape == (2, 1)
    assert batches[0][1].dtype == np.int64 and batches[1][1].tolist() == [4, 5, 6, 7]
    assert len(list(DataLoader(ds, batch_size=4, drop_last=True))) == len(DataLoader(ds, 4, drop_last=True)) == 2
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, batch_size=0)


def _epoch_orders(loader, epochs):
    return [np.concatenate([labels for _, labels in loader]).tolist() for _ in range(epochs)]


def test_dataloader_shuffling_is_seeded_and_reshuffles_each_epoch():
    ds = TensorDataset(np.zeros((23, 2)), np.arange(23))
    first = _epoch_orders(DataLoader(ds, 5, shuffle=True, rng=42), 3)
    again = _epoch_orders(DataLoader(ds, 5, shuffle=True, rng=np.random.default_rng(42)), 3)
    assert first == again                                   # same seed → same sequence of epochs
    assert all(sorted(order) == list(range(23)) for order in first)   # each epoch visits every sample once
    assert first[0] != first[1] != first[2]                 # ... in a new order
    assert first[0] != _epoch_orders(DataLoader(ds, 5, shuffle=True, rng=43), 1)[0]
    assert _epoch_orders(DataLoader(ds, 5), 1)[0] == list(range(23))


def test_default_collate_keeps_variable_length_targets_as_lists():
    ds = ShapesDataset(6, 32, seed=2)
    images, targets = next(iter(DataLoader(ds, batch_size=6)))
    assert images.shape == (6, 3, 32, 32) and isinstance(targets, list) and len(targets) == 6
    assert [t["image_id"] for t in targets] == list(range(6))
    assert len({len(t["boxes"]) for t in targets}) > 1      # images hold different numbers of objects
    boxes = [np.zeros((2, 4)), np.zeros((3, 4))]
    assert isinstance(default_collate(boxes), list)
    collated = default_collate([(np.ones(3), 1, 0.5), (np.zeros(3), 2, 1.5)])
    assert collated[0].shape == (2, 3) and collated[1].dtype == np.int64 and collated[2].dtype == np.float32
    assert default_collate([Tensor(np.ones(2)), Tensor(np.zeros(2))]).shape == (2, 2)


# ---- transforms ----------------------------------------------------------------------------------

def _assert_targets_equal(a, b):
    for key in ("labels", "boxes", "masks", "semantic_mask"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # W - (W - x) is x up to float32 rounding
    np.testing.assert_allclose(a["keypoints"], b["keypoints"], rtol=0, atol=1e-4)


@pytest.mark.parametrize("mode,perm", [("scene", None), ("pose", POSE_FLIP_PERMUTATION)])
def test_hflip_twice_is_identity_and_labels_move_with_pixels(mode, perm):
    _, samples = _samples(mode, 8, 48, seed=4)
    for image, target in samples:
        flipped_image, flipped = T.hflip(image, target, flip_permutation=perm)
        np.testing.assert_array_equal(flipped_image[:, :, ::-1], image)
        for box, mask in zip(flipped["boxes"], flipped["masks"]):
            np.testing.assert_array_equal(box, mask_to_box(mask))     # the flipped box is tight on the flipped mask
        back_image, back = T.hflip(flipped_image, flipped, flip_permutation=perm)
        np.testing.assert_array_equal(back_image, image)
        _assert_targets_equal(back, target)
        if mode == "pose":   # relabelled left ↔ right, the left shoulder is again right of the right one
            kps = flipped["keypoints"][0]
            assert kps[2, 0] > kps[3, 0]
            for p in range(14):
                if kps[p, 2] == 2:
                    assert flipped["masks"][0][int(kps[p, 1]), int(kps[p, 0])]


def test_hflip_rejects_a_bad_permutation():
    image, target = ShapesDataset(1, 32, mode="pose")[0]
    with pytest.raises(ValueError, match="flip_permutation"):
        T.hflip(image, target, flip_permutation=[0, 0] + list(range(2, 14)))


def test_crop_keeps_boxes_masks_keypoints_consistent():
    _, samples = _samples("scene", 20, 64, seed=6)
    dropped = 0
    for image, target in samples:
        top, left = 10, 20
        cropped_image, cropped = T.crop(image, target, top, left, 40, 30, min_size=3)
        np.testing.assert_array_equal(cropped_image, image[:, 10:50, 20:50])
        np.testing.assert_array_equal(cropped["semantic_mask"], target["semantic_mask"][10:50, 20:50])
        k = len(cropped["boxes"])
        assert len(cropped["labels"]) == len(cropped["masks"]) == len(cropped["keypoints"]) == k
        dropped += len(target["boxes"]) - k
        boxes = cropped["boxes"]
        assert np.all(boxes[:, [0, 2]] <= 30) and np.all(boxes[:, [1, 3]] <= 40) and np.all(boxes >= 0)
        assert np.all(boxes[:, 2] - boxes[:, 0] >= 3) and np.all(boxes[:, 3] - boxes[:, 1] >= 3)
        for box, mask in zip(boxes, cropped["masks"]):
            if mask.any():                          # a clipped box still encloses the cropped mask
                tight = mask_to_box(mask)
                assert np.all(tight[:2] >= box[:2]) and np.all(tight[2:] <= box[2:])
        kps = cropped["keypoints"]
        labelled = kps[..., 2] > 0
        assert np.all((kps[labelled][:, 0] >= 0) & (kps[labelled][:, 0] <= 30))
        assert np.all(kps[~labelled] == 0)
    assert dropped > 0                              # some objects fell outside the window


def test_crop_drops_an_instance_outside_the_window():
    image = np.zeros((3, 20, 20), np.float32)
    masks = np.zeros((2, 20, 20), bool)
    masks[0, 2:6, 2:6] = True
    masks[1, 12:18, 12:18] = True
    target = {"boxes": np.array([[2, 2, 6, 6], [12, 12, 18, 18]], np.float32), "labels": np.array([3, 4]),
              "masks": masks, "keypoints": np.array([[[4, 4, 2]], [[15, 15, 2]]], np.float32)}
    _, out = T.crop(image, target, 0, 0, 10, 10)
    assert out["labels"].tolist() == [3] and out["masks"].shape == (1, 10, 10)
    np.testing.assert_array_equal(out["boxes"], [[2, 2, 6, 6]])
    np.testing.assert_array_equal(out["keypoints"], [[[4, 4, 2]]])
    _, out = T.center_crop(image, target, 10)   # window rows/cols 5..14: both objects cut
    np.testing.assert_array_equal(out["boxes"], [[0, 0, 1, 1], [7, 7, 10, 10]])
    np.testing.assert_array_equal(out["keypoints"][:, 0, 2], [0, 2])   # (4, 4) fell outside
    with pytest.raises(ValueError, match="crop window"):
        T.crop(image, target, 15, 0, 10, 10)


def test_normalize_and_compose_are_reproducible():
    image, target = ShapesDataset(1, 32, seed=0)[0]
    out = T.normalize(image, [0.5, 0.25, 0.0], [0.5, 0.5, 2.0])
    np.testing.assert_allclose(out[1], (image[1] - 0.25) / 0.5, rtol=1e-6)
    with pytest.raises(ValueError, match="mean and std"):
        T.normalize(image, [0.5, 0.5], [1, 1])

    def pipeline(seed):
        return T.Compose([T.RandomHorizontalFlip(rng=seed), T.RandomCrop(24, rng=seed + 1),
                          T.Normalize([0.5] * 3, [0.25] * 3)])
    a, b = pipeline(3), pipeline(3)
    outs_a = [a(image, target) for _ in range(5)]
    outs_b = [b(image, target) for _ in range(5)]
    for (ia, ta), (ib, tb) in zip(outs_a, outs_b):
        np.testing.assert_array_equal(ia, ib)
        _assert_targets_equal(ta, tb)
    assert len({ia.tobytes() for ia, _ in outs_a}) > 1    # the random parts do vary between calls


# ---- data shipped by registry packages ----------------------------------------------------------

def test_sklearn_loaders():
    pytest.importorskip("sklearn", reason="scikit-learn is an optional extra (minidl[data])")
    images, labels = registry.load_digits()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == np.float32 and images.max() == 1.0
    assert labels.shape == (1797,) and set(labels.tolist()) == set(range(10))
    photos = registry.load_sample_images()
    assert set(photos) == {"china", "flower"}
    assert photos["china"].shape == (3, 427, 640) and photos["china"].dtype == np.float32
    assert 0 <= photos["flower"].min() and photos["flower"].max() <= 1
    with pytest.raises(ValueError, match="name"):
        registry.load_sample_image("tiger")


def test_skimage_loader():
    pytest.importorskip("skimage", reason="scikit-image is an optional extra (minidl[data])")
    assert registry.load_skimage("astronaut").shape == (3, 512, 512)
    camera = registry.load_skimage("camera")
    assert camera.shape == (1, 512, 512) and camera.dtype == np.float32 and camera.max() <= 1
    assert registry.load_skimage("logo").shape[0] == 3          # RGBA → RGB
    with pytest.raises(ValueError, match="SKIMAGE|shipped"):
        registry.load_skimage("lena")


def test_missing_optional_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)   # makes the import fail
    with pytest.raises(ImportError, match=r"pip install minidl\[data\]"):
        registry.load_digits()
