"""minidl.ops — torchvision-style detection ops (CS231n lecture 8: detection).

boxes.py: box_area, box_iou, box_convert, clip_boxes_to_image, remove_small_boxes,
          encode_boxes / decode_boxes (Fast R-CNN's box regression), anchor_grid, match_anchors;
nms.py: nms, batched_nms; roi_pool.py: roi_pool (Fast R-CNN); roi_align.py: roi_align (Mask R-CNN).

The speed-critical kernels (nms, roi_pool, roi_align) have a NumPy reference plus C++ and CUDA
versions sharing one per-element body: minidl/kernels/{nms,roi_pool,roi_align}.py, csrc/.
Conventions and measured speed: docs/detection_ops.md.
"""
from .boxes import (anchor_grid, box_area, box_convert, box_iou, clip_boxes_to_image, decode_boxes,
                    encode_boxes, match_anchors, remove_small_boxes)
from .nms import batched_nms, nms
from .roi_align import roi_align
from .roi_pool import roi_pool

__all__ = ["anchor_grid", "box_area", "box_convert", "box_iou", "clip_boxes_to_image",
           "decode_boxes", "encode_boxes", "match_anchors", "remove_small_boxes", "batched_nms",
           "nms", "roi_align", "roi_pool"]
