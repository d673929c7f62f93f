"""Timings of the model-independent lecture-12 tools in ``minidl.vis`` (CPU, NumPy path).

* exact t-SNE: minidl vs scikit-learn's ``TSNE(method="exact")`` (when installed) on Gaussian
  clusters, same perplexity, init, iterations — and the final KL divergence of each;
* non-parametric texture synthesis: Efros–Leung (pixel by pixel) and Efros–Freeman quilting,
  64x64 output from a 32x32 RGB sample.

Run: ``flock /tmp/minidl-bench.lock python benchmarks/bench_vis_embedding_texture.py``.
Medians of ``--repeats`` runs; minidl and the reference are interleaved (the machine is noisy).
"""
import argparse
import time

import numpy as np

from minidl.vis import pca, quilt_texture, synthesize_texture, tsne


def clusters(n, dim=50, k=10, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 6.0, (k, dim))
    return centres[np.arange(n) % k] + rng.normal(0.0, 1.0, (n, dim))


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def bench_tsne(sizes, n_iter, repeats):
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        TSNE = None
    print(f"exact t-SNE, {n_iter} iterations, perplexity 30, PCA init, 50-D input "
          f"(seconds, median of {repeats})")
    for n in sizes:
        x = clusters(n)
        init = pca(x, 2).projected
        init = init / init[:, 0].std() * 1e-4
        ours, theirs = [], []
        for _ in range(repeats):
            seconds, result = timed(lambda: tsne(x, perplexity=30.0, n_iter=n_iter, init=init,
                                                 progress=False))
            ours.append((seconds, result.kl_divergence))
            time.sleep(0.3)                      # let BLAS threads stop spinning
            if TSNE is not None:
                model = TSNE(2, perplexity=30.0, max_iter=n_iter, method="exact", init=init.copy(),
                             learning_rate="auto")
                seconds, _ = timed(lambda: model.fit(x))
                theirs.append((seconds, model.kl_divergence_))
                time.sleep(0.3)
        line = f"  N={n:5d}  minidl {np.median([s for s, _ in ours]):7.2f} s (KL {ours[0][1]:.4f})"
        if theirs:
            line += f"   sklearn exact {np.median([s for s, _ in theirs]):7.2f} s (KL {theirs[0][1]:.4f})"
        print(line, flush=True)


def bench_texture(repeats):
    yy, xx = np.mgrid[:32, :32]
    sample = np.stack([np.sin(xx / 2.0 + yy / 3.0), np.cos(yy / 2.5), (xx % 5) / 5.0]).astype(np.float32)
    print(f"texture synthesis, 64x64 output from a 32x32 RGB sample (seconds, median of {repeats})")
    for name, fn in [
        ("Efros-Leung, window 11", lambda: synthesize_texture(sample, 64, 11, rng=0, progress=False)),
        ("Efros-Leung, window 7 ", lambda: synthesize_texture(sample, 64, 7, rng=0, progress=False)),
        ("quilting, block 12    ", lambda: quilt_texture(sample, 64, 12, rng=0, progress=False)),
    ]:
        times = []
        for _ in range(repeats):
            times.append(timed(fn)[0])
            time.sleep(0.2)
        print(f"  {name}  {np.median(times):7.3f} s", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--n-iter", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    bench_texture(args.repeats)
    bench_tsne(args.sizes, args.n_iter, args.repeats)
