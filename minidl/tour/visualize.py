"""Tour chapter: visualizing and understanding CNNs (CS231n lecture 12), every technique once.

Uses the committed shapes classifier (``minidl/weights/shapes_classifier.npz``, trained by
``benchmarks/train_vis_classifier.py``) for the class-based techniques and a random-weight
VGG-style feature extractor (``minidl.models.VGGFeatures``) for textures and style; photos
come from scikit-image. ``quick`` shrinks every size and step count so the chapter runs in
seconds; the full chapter takes a few minutes on 2 CPU cores. With ``device="cuda"`` the models
live on the GPU: the techniques of ``minidl.vis`` move the NumPy images there themselves and
return arrays on the GPU, which ``_row`` copies back for matplotlib.
"""
from __future__ import annotations

import os
import time

import numpy as np
from matplotlib.figure import Figure

from .. import backend, train, vis
from ..data import SHAPE_CLASSES, ShapesDataset
from ..models import CONTENT_LAYER, STYLE_LAYERS, TransformNet, VGGFeatures, load_shapes_classifier
from ..models.classifier import FEATURE_LAYER, WEIGHTS_DIR

#: style-loss weights per layer and the TV weight (Gram matrices are normalized by C·H·W, so the
#: style terms are small numbers; TV is a sum over pixels and grows with the image)
STYLE_WEIGHTS = [1e5] * 4
TV_WEIGHT = 1e-4

FULL = dict(n_images=300, tsne_iter=500, thumbnails=40, occlusion_stride=2, class_vis_steps=150, fooling_steps=200,
            dream_size=96, deepdream_steps=10, inversion_steps=150, texture_size=64, texture_steps=100,
            style_size=96, style_steps=100, fast_images=64, fast_size=48)   # full: committed fast-style nets
QUICK = dict(n_images=40, tsne_iter=30, thumbnails=8, occlusion_stride=8, class_vis_steps=3, fooling_steps=5,
             dream_size=32, deepdream_steps=1, inversion_steps=3, texture_size=32, texture_steps=3,
             style_size=32, style_steps=2, fast_images=4, fast_steps=2, fast_size=16)


def _row(images, titles, cmap=None, size=1.8, ncols=None):
    """Images (each (C, H, W) in [0, 1] or an (H, W) map, NumPy or on the GPU) with titles, ``ncols``
    per row (default: all in one row); returns a Figure."""
    ncols = ncols or len(images)
    nrows = -(-len(images) // ncols)
    fig = Figure(figsize=(size * ncols, size * 1.15 * nrows))
    for i, (img, title) in enumerate(zip(images, titles)):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        img = backend.to_numpy(img)                 # matplotlib needs host arrays
        if img.ndim == 3:
            img = np.clip(img.transpose(1, 2, 0), 0, 1)
            img = img[..., 0] if img.shape[-1] == 1 else img
        ax.imshow(img, cmap=cmap if img.ndim == 2 else None, interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
    return fig


def _resize_square(image, size):
    """Centre-crop a (C, H, W) photo to a square and resize it to size×size (bilinear)."""
    from ..vis._common import resize
    c, h, w = image.shape
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return resize(image[None, :, top:top + s, left:left + s], (size, size))[0]


def _shapes(n, seed, model_size=32):
    data = ShapesDataset(n, size=model_size, mode="single", seed=seed, target_keys="labels")
    images, labels = zip(*(data[i] for i in range(n)))
    return np.stack(images), np.concatenate(labels)


def run(report, quick=False, device="cpu"):
    cfg = QUICK if quick else FULL
    results = {}
    report.section("12. Visualizing and understanding CNNs")
    model = load_shapes_classifier().to(device)
    images, labels = _shapes(cfg["n_images"], seed=2)
    predicted = train.predict(model, images).argmax(1)
    accuracy = float((predicted == labels).mean())
    results["vis_classifier_accuracy"] = accuracy
    report.text(f"A 3-conv classifier trained by minidl on 32×32 single-shape images ({', '.join(SHAPE_CLASSES)}); "
                f"accuracy on {len(images)} new images: {accuracy:.3f}.")

    # ---- activations: filters, neighbours, embeddings, patches --------------------------------
    report.figure(vis.show_filter_grid(model.features[0].weight, title="conv1 filters (3×3×3)", scale=8),
                  "First-layer filters of the classifier (each min-max normalized).")
    feats = vis.extract_features(model, images, FEATURE_LAYER)
    queries = np.arange(4)
    _, nn_feat = vis.nearest_neighbors(feats[queries], feats, 6)
    _, nn_pix = vis.nearest_neighbors(images[queries], images, 6)
    rows = [np.concatenate([images[nn_pix[r]], np.ones((1,) + images.shape[1:], np.float32), images[nn_feat[r]]])
            for r in range(len(queries))]
    fig = vis.show_image_grid(np.concatenate(rows), nrow=13, pad_value=1.0, scale=2,
                              title="query + 5 nearest by pixels  |  query + 5 nearest by features")
    report.figure(fig, "Nearest neighbours of 4 query images (first of each row-half) in pixel space "
                       "(left) and in last-layer feature space (right): features find the same shape in "
                       "other colours and positions, pixels find similar colours.")
    p = vis.pca(feats, 2)
    report.figure(vis.plot_embedding(p.projected, labels, images=images, class_names=SHAPE_CLASSES,
                                     max_thumbnails=cfg["thumbnails"], thumbnail_zoom=0.8,
                                     title="PCA of last-layer features"),
                  "PCA of the 64-d last-layer features, coloured by class.")
    t = vis.tsne(feats, perplexity=min(30.0, (len(feats) - 1) / 3), n_iter=cfg["tsne_iter"], rng=0,
                 progress=False)
    report.figure(vis.plot_embedding(t.embedding, labels, images=images, class_names=SHAPE_CLASSES,
                                     max_thumbnails=cfg["thumbnails"], thumbnail_zoom=0.8,
                                     title="t-SNE of last-layer features"),
                  "t-SNE of the same features: the classes form separate clusters.")
    rows = []
    rf = vis.receptive_field_of(model, "features.10")
    for channel in (0, 5, 10, 20):
        patches = vis.max_activating_patches(model, images, "features.10", channel, k=8)
        rows.append([np.pad(pt.pixels, ((0, 0), (0, rf.size[0] - pt.pixels.shape[1]),
                                        (0, rf.size[1] - pt.pixels.shape[2])), constant_values=1.0)
                     for pt in patches])
    report.figure(vis.show_image_grid(np.stack(sum(rows, [])), nrow=8, pad_value=1.0, scale=3,
                                      title=f"top patches, channels 0/5/10/20 of conv3 (receptive field {rf.size[0]}px)"),
                  "Maximally activating patches (one row per channel of conv3's ReLU), each the unit's "
                  "receptive field in the image.")

    # ---- occlusion, saliency, guided backprop, sanity check ------------------------------------
    show = np.arange(4)
    maps, titles = [], []
    for i in show[:3]:
        occ = vis.occlusion_heatmap(model, images[i], int(labels[i]), patch_size=8, stride=cfg["occlusion_stride"],
                                   fill_value=0.5)
        maps += [images[i], occ.heatmap]
        titles += [SHAPE_CLASSES[labels[i]], f"p(class) occluded (base {occ.baseline:.2f})"]
    report.figure(_row(maps, titles, cmap="viridis"),
                  "Occlusion: the probability of the true class as a grey 8×8 square slides over the "
                  "image (dark = that region mattered).")
    sal = vis.saliency_map(model, images[show], labels[show])
    gb = vis.guided_backprop(model, images[show], labels[show])
    check = vis.model_randomization_check(model, images[show], labels[show], rng=0)
    grid = []
    for i in range(len(show)):
        grid += [images[show[i]], sal[i], vis.guided_backprop_image(gb[i]), check.trained["guided_backprop"][i],
                 check.randomized["saliency"][i], check.randomized["guided_backprop"][i]]
    fig = _row(grid, ["image", "saliency", "guided bp", "|guided bp|", "saliency, random W",
                      "|guided bp|, random W"] * len(show), cmap="gray", size=1.6, ncols=6)
    report.figure(fig, "Saliency maps and guided backprop on the trained model, and the same on a copy "
                       "with random weights (Adebayo et al.'s sanity check).")
    results["sanity_spearman_saliency"] = check.mean_similarity["saliency"]
    results["sanity_spearman_guided_backprop"] = check.mean_similarity["guided_backprop"]
    report.table([(k, v) for k, v in check.mean_similarity.items()],
                 ["method", "Spearman ρ, trained vs random weights"])

    # ---- gradient ascent: class visualization, fooling, DeepDream -----------------------------
    start = time.time()
    class_images = [vis.class_visualization(model, c, (3, 32, 32), num_steps=cfg["class_vis_steps"], lr=0.02,
                                            l2_reg=1e-3, blur_every=5, blur_sigma=0.6, max_jitter=3,
                                            value_range=(0, 1), image_mean=0.5, init_scale=0.05, rng=c,
                                            progress_bar=False)
                    for c in range(len(SHAPE_CLASSES))]
    report.figure(_row([r.image for r in class_images],
                       [f"{n}: s={r.scores[-1]:.1f}" for n, r in zip(SHAPE_CLASSES, class_images)]),
                  f"Class visualizations (gradient ascent with L2, blur, jitter; {cfg['class_vis_steps']} steps, "
                  f"{time.time() - start:.0f} s).")
    i = int(np.flatnonzero(predicted == labels)[0])
    scores = train.predict(model, images[i:i + 1])[0]
    target = int(np.argsort(scores)[-2])                      # the runner-up class
    fool = vis.fooling_image(model, images[i], target, lr=0.5, max_steps=cfg["fooling_steps"], value_range=(0, 1))
    results["fooling_success"] = bool(fool.success)
    results["fooling_relative_l2"] = fool.relative_l2
    report.figure(_row([images[i], fool.image, 0.5 + 10 * fool.perturbation],
                       [SHAPE_CLASSES[labels[i]], f"predicted {SHAPE_CLASSES[target]}" if fool.success else "not fooled",
                        "difference ×10"]),
                  f"A fooling image: {fool.steps} steps, ‖δ‖₂/‖I‖₂ = {fool.relative_l2:.3f}, max |δ| = {fool.linf:.3f}.")
    from ..data import load_skimage
    photo = _resize_square(load_skimage("chelsea"), cfg["dream_size"])
    dreams = [vis.deepdream(model, photo, layer, num_octaves=2, steps_per_octave=cfg["deepdream_steps"], lr=0.02,
                            value_range=(0, 1), rng=0, progress_bar=False).image
              for layer in ("features.6", "features.10")]
    report.figure(_row([photo] + dreams, ["photo", "dream at conv2", "dream at conv3"], size=2.5),
                  "DeepDream with the shapes classifier: the gradient at a layer set to its activation.")

    # ---- feature inversion, textures, style -------------------------------------------------
    inv = [vis.invert_features(model, images[0], layer, tv_weight=5e-3, num_steps=cfg["inversion_steps"], lr=0.05,
                               value_range=(0, 1), rng=0, progress_bar=False)
           for layer in ("features.2", "features.6", "features.10", "classifier.2")]
    report.figure(_row([images[0]] + [r.image for r in inv],
                       ["original"] + [f"from {n} (err {r.feature_errors[-1]:.3f})"
                                        for n, r in zip(("conv1", "conv2", "conv3", "fc"), inv)]),
                  "Feature inversion: images whose features match the original's at deeper and deeper layers.")
    vgg = VGGFeatures(rng=0).to(device)
    texture = _texture_image(cfg["texture_size"])
    start = time.time()
    textures, names = [], []
    for depth in (1, 2, 4):
        r = vis.synthesize_texture_gram(vgg, texture, STYLE_LAYERS[:depth], num_steps=cfg["texture_steps"],
                                        lr=0.05, value_range=(0, 1), rng=0, progress_bar=False)
        textures.append(r.image)
        names.append(f"up to {STYLE_LAYERS[depth - 1]}")
    results["texture_loss_reduction"] = r.losses[0] / max(r.losses[-1], 1e-12)
    report.figure(_row([texture] + textures, ["texture"] + names, size=2.2),
                  f"Gram-matrix texture synthesis from a random-weight VGG ({time.time() - start:.0f} s): matching "
                  f"more layers reproduces larger structures.")
    content = _resize_square(load_skimage("chelsea"), cfg["style_size"])
    style = _resize_square(load_skimage("immunohistochemistry"), cfg["style_size"])
    start = time.time()
    st = vis.style_transfer(vgg, content, style, CONTENT_LAYER, STYLE_LAYERS, content_weight=1.0,
                            style_weights=STYLE_WEIGHTS, tv_weight=TV_WEIGHT, num_steps=cfg["style_steps"], lr=0.02,
                            rng=0, progress_bar=False)
    report.figure(_row([content, style, st.image], ["content", "style", "Gatys style transfer"], size=2.5),
                  f"Style transfer (Adam on the image, {cfg['style_steps']} steps, {time.time() - start:.0f} s).")

    # ---- fast style: instance vs batch norm; conditional instance norm --------------------------
    contents = _content_crops(cfg["fast_images"] + 4, cfg["fast_size"])
    tests, styles = contents[-4:], _fast_styles(cfg["fast_size"])     # the last 4 crops: never trained on
    start = time.time()
    nets, source = (fast_style_nets(cfg["fast_size"], cfg["fast_steps"], vgg, cfg["fast_images"], device=device)
                    if quick else load_fast_style_nets(device))
    seconds = time.time() - start
    outs, titles = [tests[0]], ["content (not trained on)"]
    losses = fast_style_test_losses({norm: nets[norm] for norm in ("batch", "instance")}, vgg,
                                    cfg["fast_size"], cfg["fast_images"])     # on `tests`, style 0
    for norm, loss in losses.items():
        outs.append(vis.stylize(nets[norm], tests[:1])[0])
        results[f"fast_style_{norm}_test_loss"] = loss
        titles.append(f"{norm} norm, loss {loss:.3g}")
    report.figure(_row(outs + [styles[0]], titles + ["style"], size=2.5),
                  f"Fast style transfer (Johnson et al.), one forward pass per image: transform networks {source} "
                  f"({seconds:.0f} s) with batch norm vs instance norm, same seeds and steps; loss = the training "
                  f"loss on 4 crops never trained on. Instance norm (Ulyanov et al.) normalizes each image's "
                  f"contrast itself and reaches the lower loss.")
    grid = [vis.stylize(nets["instance"], tests)]
    report.figure(_row(list(tests) + list(grid[0]), ["content"] * 4 + ["instance norm"] * 4, size=2.0, ncols=4),
                  "The instance-norm network on 4 crops it never saw: content kept, colours and texture of the style.")
    mix = [vis.stylize(nets["conditional"], tests[0], style=[1 - a, a]) for a in (0.0, 0.25, 0.5, 0.75, 1.0)]
    report.figure(_row(styles[:1] + mix + styles[1:], ["style 0"] + [f"w = ({1 - a:.2f}, {a:.2f})"
                                                                    for a in (0, .25, .5, .75, 1)] + ["style 1"]),
                  "One network, two styles (conditional instance norm, Dumoulin et al.): mixing the per-style scale "
                  "and shift interpolates between the styles.")
    return results


def _texture_image(size):
    """A texture sample: a crop of scikit-image's brick wall."""
    from ..data import load_skimage
    brick = load_skimage("brick")
    if brick.shape[0] == 1:
        brick = np.repeat(brick, 3, axis=0) * np.array([1.0, 0.8, 0.6], np.float32)[:, None, None]
    return _resize_square(brick[:, :256, :256], size)


def _content_crops(n, size):
    """``n`` random size×size crops (rescaled) of scikit-image photos: content images."""
    from ..data import load_skimage
    photos = [load_skimage(name) for name in ("astronaut", "chelsea", "coffee", "rocket")]
    rng = np.random.default_rng(0)
    crops = []
    from ..vis._common import resize
    for k in range(n):
        p = photos[k % len(photos)]
        s = int(rng.integers(min(p.shape[1:]) // 3, min(p.shape[1:])))
        y, x = rng.integers(0, p.shape[1] - s + 1), rng.integers(0, p.shape[2] - s + 1)
        crops.append(resize(p[None, :, y:y + s, x:x + s], (size, size))[0])
    return np.stack(crops).astype(np.float32)


# ---- fast style: the recipe shared by the tour and benchmarks/train_fast_style.py -------------
#: Fast style needs its own balance. Gatys' optimization *starts at the content image* and stops
#: after 100 steps, so content weight 1 vs style 1e5 (content term ≤ 0.01 against a style term of
#: hundreds) still leaves the content in place. A feed-forward network starts at a random output
#: and goes wherever the loss points: with those weights the content is worth nothing, and TV
#: (1e-4 × a sum over pixels ≈ 0.1, ten times the largest possible content term) alone blurs it
#: away. So: content weight 3e4 (both terms of the same order; 1e4 let the style win and collapse
#: to a flat brown in a 600-step check), no TV (the net's convolutions
#: already smooth), and Johnson's content layer relu2_2 (half resolution; relu3_1 at quarter
#: resolution keeps too little detail for a net to learn from random filters).
FAST_STYLE = dict(content_layer="relu2_2", content_weight=3e4, style_weights=[1e5] * 4, tv_weight=0.0,
                  lr=3e-3, batch_size=4, styles=("immunohistochemistry", "colorwheel"))
FAST_STYLE_WEIGHTS = {norm: os.path.join(WEIGHTS_DIR, f"fast_style_{norm}.npz") for norm in ("batch", "instance", "conditional")}


def _fast_styles(size):
    from ..data import load_skimage
    return [_resize_square(load_skimage(n), size) for n in FAST_STYLE["styles"]]


def _new_fast_style_net(norm):
    return TransformNet(norm=norm, num_styles=2 if norm == "conditional" else 1, border=8, rng=np.random.default_rng(0))


def fast_style_nets(size, steps, vgg=None, num_images=64, progress_bar=False, device="cpu"):
    """Train the three transform networks (batch, instance, conditional with both styles) on
    ``num_images`` crops of ``size`` px for ``steps`` Adam steps each (the conditional one
    2 × ``steps``: half for each style), on ``device`` (a given ``vgg`` must live there too).
    Returns ``({norm: net}, description)``."""
    vgg = VGGFeatures(rng=0).to(device) if vgg is None else vgg
    contents, styles, c = _content_crops(num_images, size), _fast_styles(size), FAST_STYLE
    nets = {}
    for norm in ("batch", "instance", "conditional"):
        net = _new_fast_style_net(norm).to(device)     # train_fast_style moves the crops to the net's device
        style = styles if norm == "conditional" else styles[0]
        net.history = vis.train_fast_style(net, vgg, contents, style, c["content_layer"], STYLE_LAYERS,
                                           c["content_weight"], c["style_weights"], c["tv_weight"], epochs=10**6,
                                           batch_size=c["batch_size"], lr=c["lr"], rng=0, progress_bar=progress_bar,
                                           max_steps=steps * (2 if norm == "conditional" else 1))
        nets[norm] = net
    return nets, f"trained for {steps} steps of batch {c['batch_size']} here"


def load_fast_style_nets(device="cpu"):
    """The committed networks of ``benchmarks/train_fast_style.py`` (``allow_pickle=False``), on ``device``."""
    nets = {}
    for norm, path in FAST_STYLE_WEIGHTS.items():
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} not found: run `python benchmarks/train_fast_style.py`")
        net = _new_fast_style_net(norm)
        with np.load(path, allow_pickle=False) as f:
            net.load_state_dict({k: f[k] for k in f.files if not k.startswith("meta_")})
            steps = int(f["meta_steps"])
        nets[norm] = net.eval().to(device)
    return nets, f"loaded from minidl/weights/ (trained {steps} steps by benchmarks/train_fast_style.py)"


def fast_style_test_losses(nets, vgg, size, num_images):
    """``{norm: loss}`` of networks trained by ``fast_style_nets(size, ..., num_images=num_images)``
    on 4 crops they never saw (the 4 crops after their training crops), with style 0 — the
    number the tour shows, and what ``benchmarks/train_fast_style.py`` compares between devices."""
    tests, style = _content_crops(num_images + 4, size)[-4:], _fast_styles(size)[0]
    return {norm: _fast_style_loss(net, vgg, tests, style) for norm, net in nets.items()}


def _fast_style_loss(net, vgg, images, style):
    """The training loss of ``net`` on ``images`` (no graph; on the device of ``net`` and ``vgg``)."""
    from ..tensor import Tensor, no_grad
    c = FAST_STYLE
    loss = vis.StyleLoss(vgg, style, c["content_layer"], STYLE_LAYERS, c["content_weight"], c["style_weights"],
                         c["tv_weight"])
    with no_grad():
        return float(loss(Tensor(vis.stylize(net, images)), loss.content_features(images)).item())
