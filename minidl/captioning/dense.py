"""Dense captioning = object detection + captioning (CS231n lecture 8; Johnson et al., DenseCap 2016).

A detector says *where* and *what class*; a captioner says *what it looks like* in words. Dense
captioning does both for every region: each detected box gets its own sentence ("a small red
circle"). DenseCap's architecture shares one CNN between the two, like Fast R-CNN shares it
between proposals:

    image ──CNN──> feature map ──RoI pool(box)──> box head's hidden layers ──> region code (K, 256)
      │                                                 │                           │
      └──────────── RoIAlign(box, 4×4) on the pixels ───┼──────> [region code, pixels] (K, 304)
                                                        │                           │
                                                  class + box offsets        CaptionDecoder (LSTM)
                                                  (Fast R-CNN's head)        "a small red circle"

``DenseCaptioner`` is ``FastRCNN`` (``minidl.detection.fast_rcnn``) plus a ``CaptionDecoder``
reading the box head's shared hidden layer — the same vector the classifier and the box
regressor read — with the box's own pixels beside it (the *caption code*, below). Training adds a
caption loss on the **foreground** RoIs (each RoI takes the caption of the ground-truth object it
was matched to by ``sample_rois``) to Fast R-CNN's multi-task loss, and back-propagates all three
into the shared backbone.

Why pixels too: a detector trained for shape classes is free to forget colour — that is what
makes it colour-invariant. A linear probe on the committed Fast R-CNN's region codes names the
colour word of held-out objects 20 % of the time (always guessing the commonest word: 27 %), on its
RoI-pooled feature map 29 %; RoIAlign on the *image* itself (a 4×4 grid of mean colours of the box,
48 numbers) 90 %. Trained on the region code alone, jointly for 3,000 steps, this model got 21 % of
the found objects' captions exactly right; with the pixels beside it, 74 % (docs/captioning.md). So
the caption code is ``[region code, RoIAlign(image, box, 4)]``: the detector's "what shape, where"
beside the raw "what colour" — the hypercolumn idea (Hariharan et al. 2015: describe a location by
features from several depths, here the shallowest). The decoder also reads the caption code at
every step (``feed_features``).

Departures from DenseCap, stated: the regions come from selective search + the box head (Fast
R-CNN), not from DenseCap's fully convolutional localization layer with bilinear sampling; the
detector keeps its five shape classes instead of DenseCap's single "object" class.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Tensor, no_grad
from ..detection.box_head import detection_loss
from ..detection.fast_rcnn import FastRCNN, rois_with_batch_index
from ..detection.roi_sampling import sample_rois
from .. import functional as F
from ..ops import roi_align, roi_pool
from ..train import host_float32, model_device
from .captioner import CaptionDecoder


class DenseCaptioner(FastRCNN):
    """Fast R-CNN whose region codes also feed a caption decoder.

    Args (besides ``FastRCNN``'s): ``vocab_size`` — tokens of the caption vocabulary;
    ``embed_dim`` and ``lstm_hidden`` — the decoder's word-embedding and state sizes;
    ``pixel_grid`` — the caption code's RoIAlign grid on the image (0: region code alone);
    ``feed_features`` — the decoder reads the caption code at every step too, not only through
    its initial state (``CaptionDecoder``).
    """

    def __init__(self, num_classes, vocab_size, widths=(16, 64), roi_size=4, hidden=256, embed_dim=64,
                 lstm_hidden=256, batch_norm=True, pad_index=0, pixel_grid=4, feed_features=True, rng=None):
        rng = np.random.default_rng(rng)
        super().__init__(num_classes, widths, roi_size, hidden, batch_norm, rng=rng)
        if isinstance(pixel_grid, bool) or not isinstance(pixel_grid, (int, np.integer)) or pixel_grid < 0:
            raise ValueError(f"pixel_grid must be an int >= 0 (0: no pixels in the caption code), got {pixel_grid!r}")
        self.pixel_grid = int(pixel_grid)
        code_size = hidden + 3 * self.pixel_grid ** 2
        self.captioner = CaptionDecoder(code_size, vocab_size, embed_dim, lstm_hidden, pad_index,
                                        feed_features=feed_features, rng=rng)

    def region_codes(self, feature_map, rois):
        """Feature map (N, D, h, w), RoIs (K, 5) -> the box head's shared hidden vectors (K, hidden)."""
        pooled = roi_pool(feature_map, rois, self.roi_size, spatial_scale=1.0 / self.feature_stride)
        return self.head.shared(pooled.reshape(pooled.shape[0], -1))

    def caption_codes(self, images, codes, rois):
        """What the caption decoder reads: region codes (K, hidden) beside each box's pixels,
        RoIAlign on the centred image with a ``pixel_grid`` × ``pixel_grid`` grid, flattened ->
        (K, hidden + 3·grid²)."""
        if self.pixel_grid == 0:
            return codes
        pixels = roi_align(images - 0.5, rois, self.pixel_grid, spatial_scale=1.0)     # (K, 3, g, g)
        return F.cat([codes, pixels.reshape(pixels.shape[0], -1)], axis=1)

    def regions(self, images, rois):
        """images (N, 3, H, W), rois (K, 5) -> ``(class_logits, box_deltas, caption_codes)``."""
        codes = self.region_codes(self.features(images), rois)
        return self.head.classifier(codes), self.head.box_regressor(codes), self.caption_codes(images, codes, rois)

    def loss(self, images, proposals, targets, captions, rois_per_image=64, positive_fraction=0.25,
             caption_weight=1.0, rng=None):
        """Detection + caption loss -> ``(total, classification, regression, caption)``.

        captions: per image, the encoded caption of each ground-truth object, (G_i, L) token ids
        (every image the same L). The caption term is the mean cross-entropy over the words of the
        foreground RoIs' captions.
        """
        rng = np.random.default_rng(rng)
        if len(captions) != len(targets):
            raise ValueError(f"captions must hold one (G_i, L) array per image: {len(targets)} images, "
                             f"{len(captions)} caption arrays")
        sampled = [sample_rois(p, t["boxes"], t["labels"], rois_per_image, positive_fraction, rng=rng)
                   for p, t in zip(proposals, targets)]
        images = images if isinstance(images, Tensor) else Tensor(images, device=model_device(self))
        logits, deltas, codes = self.regions(images, rois_with_batch_index([s["rois"] for s in sampled]))
        total, classification, regression = detection_loss(
            logits, deltas, np.concatenate([s["labels"] for s in sampled]),
            np.concatenate([s["regression_targets"] for s in sampled]))
        # Each foreground RoI takes the caption of its matched object: index into all images'
        # captions stacked, shifting each image's object indices by the objects before it.
        offsets = np.cumsum([0] + [len(c) for c in captions[:-1]])
        matched = np.concatenate([np.where(s["matched_gt"] >= 0, s["matched_gt"] + o, -1)
                                  for s, o in zip(sampled, offsets)])
        foreground = np.flatnonzero(matched >= 0)
        if len(foreground) == 0:
            return total, classification, regression, codes.sum() * 0.0
        all_captions = np.concatenate([np.asarray(c, np.int64) for c in captions])
        caption = self.captioner.loss(codes[foreground], all_captions[matched[foreground]])
        return total + caption * caption_weight, classification, regression, caption

    def describe(self, images, proposals, vocab, beam_size=1, max_length=12, score_threshold=0.05,
                 nms_threshold=0.5, max_detections=20):
        """Detect, then caption every detected box -> per image a dict with ``boxes``, ``scores``,
        ``labels`` (as ``detect``) and ``captions`` (a list of strings).

        Each final box (after box regression and NMS) is RoI-pooled again to get its own code, so
        the caption describes the box that is drawn, not the proposal it came from.
        """
        images = host_float32(images)
        detections = self.detect(images, proposals, score_threshold, nms_threshold, max_detections)
        device = model_device(self)
        with no_grad():
            images = Tensor(images, device=device)
            rois = rois_with_batch_index([d["boxes"] for d in detections])
            codes = (self.caption_codes(images, self.region_codes(self.features(images), rois), rois)
                     if len(rois) else None)
        tokens = (self.captioner.generate(codes, vocab.start_index, vocab.end_index, max_length, beam_size)
                  if codes is not None else np.zeros((0, 1), np.int64))
        start = 0
        for d in detections:
            d["captions"] = [vocab.decode(t) for t in tokens[start:start + len(d["boxes"])]]
            start += len(d["boxes"])
        return detections
