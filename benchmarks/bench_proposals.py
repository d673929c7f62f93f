"""Region proposals on the shapes data: selective search vs sliding windows at the same budget.

Prints, for generated scene images (``ShapesDataset(mode="scene")``), the recall of the ground-truth
boxes at IoU 0.5 and 0.7, the mean best overlap (MABO, Uijlings et al.'s summary), the number of
proposals and the time per image.

    flock /tmp/minidl-bench.lock python benchmarks/bench_proposals.py --images 50 --sizes 96 128

Sliding windows get scales spread geometrically over the objects' size range (10 % to 50 % of the
image side) and a stride proportional to the window (``fraction × scale``), the fraction chosen as
the smallest that keeps the count within the budget. Two grids are tried: 4 scales × 3 aspect
ratios (0.5, 1, 2), and 6 scales of square windows only (the best of a few grids we tried: at a
fixed budget, fewer shapes buy a finer stride).
"""
import argparse
import time

import numpy as np

from minidl.data import ShapesDataset
from minidl.detection import best_overlaps, selective_search, sliding_window_proposals


def sliding_windows_within(size, budget, n_scales, aspect_ratios):
    """The densest sliding-window grid (stride = fraction × scale) with at most ``budget`` boxes."""
    scales = np.geomspace(0.1 * size, 0.5 * size, n_scales)
    low, high = 0.05, 2.0                      # bisection on the stride fraction
    for _ in range(30):
        mid = (low + high) / 2
        if len(sliding_window_proposals(size, scales, aspect_ratios, stride=mid * scales)) <= budget:
            high = mid
        else:
            low = mid
    return sliding_window_proposals(size, scales, aspect_ratios, stride=high * scales), scales, high


def summarize(name, overlaps, counts, seconds):
    overlaps = np.concatenate(overlaps)
    print(f"  {name:<26} recall@0.5 {np.mean(overlaps >= 0.5):.3f}  recall@0.7 {np.mean(overlaps >= 0.7):.3f}  "
          f"MABO {overlaps.mean():.3f}  proposals/img {np.mean(counts):6.1f}  "
          f"time/img median {1e3 * np.median(seconds):6.1f} ms, mean {1e3 * np.mean(seconds):6.1f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 128])
    parser.add_argument("--budget", type=int, default=500)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--modes", nargs="+", default=["single", "fast"])
    args = parser.parse_args()

    for size in args.sizes:
        dataset = ShapesDataset(args.images, size, mode="scene", seed=args.seed)
        samples = [dataset[i] for i in range(len(dataset))]
        n_gt = sum(len(t["boxes"]) for _, t in samples)
        print(f"{args.images} scene images {size}x{size} px, {n_gt} objects, budget {args.budget} proposals")

        for n_scales, ratios in ((4, (0.5, 1.0, 2.0)), (6, (1.0,))):
            windows, scales, fraction = sliding_windows_within(size, args.budget, n_scales, ratios)
            overlaps = [best_overlaps(windows, t["boxes"]) for _, t in samples]
            summarize(f"sliding {n_scales}x{len(ratios)} (f={fraction:.2f})", overlaps,
                      [len(windows)] * len(samples), [0.0])
            print(f"    scales {np.round(scales, 1).tolist()} px, ratios h/w {list(ratios)}, "
                  f"stride = {fraction:.2f} x scale")

        for mode in args.modes:
            for min_size in (None, 20):
                overlaps, counts, seconds = [], [], []
                for image, target in samples:
                    start = time.perf_counter()
                    boxes = selective_search(image, mode=mode, max_proposals=args.budget, min_size=min_size)
                    seconds.append(time.perf_counter() - start)
                    overlaps.append(best_overlaps(boxes, target["boxes"]))
                    counts.append(len(boxes))
                label = f"selective search {mode}" + ("" if min_size is None else f" min_size={min_size}")
                summarize(label, overlaps, counts, seconds)


if __name__ == "__main__":
    main()
