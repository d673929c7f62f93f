"""minidl.detection — object detection (CS231n lecture 8): region proposals first.

* ``proposals.py``: sliding windows (the brute-force baseline), selective search (Uijlings et al.),
  ``proposal_recall``.
"""
from .proposals import (COLOUR_SPACES, STRATEGIES, best_overlaps, convert_colour, hierarchical_grouping,
                        proposal_recall, selective_search, sliding_window_proposals)

__all__ = ["sliding_window_proposals", "selective_search", "hierarchical_grouping", "convert_colour",
           "proposal_recall", "best_overlaps", "STRATEGIES", "COLOUR_SPACES"]
