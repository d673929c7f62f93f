"""minidl.detection — object detection (CS231n lecture 8): region proposals first.

* ``proposals.py``: sliding windows (the brute-force baseline), selective search (Uijlings et al.),
  ``proposal_recall``.
* ``rcnn.py``, ``fast_rcnn.py``, ``single_shot.py``: the three detectors of the lecture, built from
  ``roi_sampling.py`` (training targets), ``box_head.py`` (class + box head, multi-task loss) and
  ``postprocess.py`` (decode, threshold, per-class NMS).
"""
from .proposals import (COLOUR_SPACES, STRATEGIES, best_overlaps, convert_colour, hierarchical_grouping,
                        proposal_recall, selective_search, sliding_window_proposals)

from .fast_rcnn import FastRCNN
from .rcnn import RCNN
from .single_shot import SingleShotDetector

__all__ = ["RCNN", "FastRCNN", "SingleShotDetector",
           "sliding_window_proposals", "selective_search", "hierarchical_grouping", "convert_colour",
           "proposal_recall", "best_overlaps", "STRATEGIES", "COLOUR_SPACES"]
