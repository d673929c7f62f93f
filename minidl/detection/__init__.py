"""minidl.detection — object detection (CS231n lecture 8), in the lecture's order.

* ``proposals.py``: sliding windows (the brute-force baseline), selective search (Uijlings et al.),
  ``proposal_recall``; ``sliding_window.py``: a classifier at every window, at equal recall.
* ``rcnn.py`` (warp + CNN per proposal, softmax head), with the paper's own training in
  ``feature_cache.py`` + ``rcnn_svm.py`` (features cached on disk, linear SVMs, ridge box regressor);
  ``spp_net.py`` (conv once, spatial pyramid pooling per window); ``fast_rcnn.py`` (RoI pooling,
  end to end); ``yolo.py`` and ``single_shot.py`` (no proposals) — built from ``roi_sampling.py``
  (training targets), ``box_head.py`` (class + box head, multi-task loss) and ``postprocess.py``
  (decode, threshold, per-class NMS).
"""
from .proposals import (COLOUR_SPACES, STRATEGIES, best_overlaps, convert_colour, hierarchical_grouping,
                        proposal_recall, selective_search, sliding_window_proposals)

from .fast_rcnn import FastRCNN
from .feature_cache import load_feature_cache, write_feature_cache
from .rcnn import RCNN
from .rcnn_svm import RCNNWithSVMs, train_rcnn_with_svms
from .single_shot import SingleShotDetector
from .sliding_window import sliding_window_detect, windows_for_recall
from .spp_net import SPPNet
from .yolo import YOLODetector

__all__ = ["RCNN", "RCNNWithSVMs", "SPPNet", "FastRCNN", "YOLODetector", "SingleShotDetector",
           "write_feature_cache", "load_feature_cache", "train_rcnn_with_svms",
           "sliding_window_proposals", "sliding_window_detect", "windows_for_recall", "selective_search",
           "hierarchical_grouping", "convert_colour", "proposal_recall", "best_overlaps", "STRATEGIES",
           "COLOUR_SPACES"]
