"""Tests of minidl.vis.texture_nonparametric: Efros–Leung pixel growth and Efros–Freeman quilting."""
import numpy as np
import pytest

from minidl.vis.texture_nonparametric import gaussian_window, min_error_cut, quilt_texture, synthesize_texture


def random_sample(shape=(3, 16, 16), seed=0):
    """Random colours: every pixel's colour occurs once, so a copied pixel can be traced back."""
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def stripes(height=24, width=24, period=4):
    """Vertical stripes with a distinct value for each of the ``period`` phases."""
    return np.tile((np.arange(width) % period) / (period - 1), (height, 1))


def assert_periodic_vertical_stripes(out, period):
    np.testing.assert_array_equal(out, np.broadcast_to(out[:1], out.shape))     # columns constant
    np.testing.assert_array_equal(out[:, period:], out[:, :-period])           # period kept
    assert len(np.unique(out[0, :period])) == period                            # all phases, in order


SYNTHESIZERS = [
    pytest.param(lambda s, size, rng: synthesize_texture(s, size, window_size=7, rng=rng, progress=False),
                 id="efros_leung"),
    pytest.param(lambda s, size, rng: quilt_texture(s, size, block_size=8, rng=rng, progress=False),
                 id="quilting"),
]


@pytest.mark.parametrize("synth", SYNTHESIZERS)
def test_output_shape_layout_and_dtype(synth):
    sample = random_sample()
    assert synth(sample, (20, 26), 0).shape == (3, 20, 26)
    out = synth(sample[0], 18, 0)                                      # (H, W) in, (H, W) out
    assert out.shape == (18, 18) and out.dtype == np.float32
    out = synth((sample[:1] * 255).astype(np.uint8), 12, 0)
    assert out.shape == (1, 12, 12) and out.dtype == np.uint8


@pytest.mark.parametrize("synth", SYNTHESIZERS)
def test_every_output_pixel_is_copied_from_the_sample(synth):
    sample = random_sample()
    out = synth(sample, 24, 1)
    palette = {tuple(c) for c in sample.reshape(3, -1).T}
    assert all(tuple(c) in palette for c in out.reshape(3, -1).T)


@pytest.mark.parametrize("synth", SYNTHESIZERS)
def test_stripes_stay_periodic(synth):
    # every neighbourhood has an exact match (distance 0) in the right phase, so the stripes
    # continue without a single wrong column, across the whole output
    assert_periodic_vertical_stripes(synth(stripes(), (20, 30), 2), period=4)


@pytest.mark.parametrize("synth", SYNTHESIZERS)
def test_a_seed_gives_the_same_texture(synth):
    sample = random_sample(seed=3)
    a, b, c = synth(sample, 20, 5), synth(sample, 20, 5), synth(sample, 20, 6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(synth(sample, 20, np.random.default_rng(7)), a)


def test_efros_leung_continues_a_smooth_texture_locally():
    # A diagonal ramp that repeats every 6 pixels along x + y: in the output, most pixels must
    # keep the rule "value(y, x+1) == value(y+1, x)" of the sample (copies of consistent context).
    yy, xx = np.mgrid[:20, :20]
    sample = ((xx + yy) % 6).astype(np.float64)
    out = synthesize_texture(sample, 24, window_size=5, rng=0, progress=False)
    assert (out[:-1, 1:] == out[1:, :-1]).mean() > 0.95


def test_min_error_cut_follows_the_cheap_valley():
    errors = np.ones((6, 5))
    valley = [1, 2, 3, 3, 2, 1]                                        # moves one column per row
    errors[np.arange(6), valley] = 0.0
    np.testing.assert_array_equal(min_error_cut(errors), valley)


def test_gaussian_window_peaks_at_the_centre():
    g = gaussian_window(7)
    assert g.shape == (7, 7) and g[3, 3] == 1.0 and g.argmax() == 24
    np.testing.assert_allclose(g, g.T)


def test_bad_arguments_raise_clear_errors():
    sample = random_sample(shape=(3, 10, 10))
    with pytest.raises(ValueError, match="window_size must be odd"):
        synthesize_texture(sample, 8, window_size=4, progress=False)
    with pytest.raises(ValueError, match="window_size"):
        synthesize_texture(sample, 8, window_size=11, progress=False)
    with pytest.raises(ValueError, match="block_size"):
        quilt_texture(sample, 8, block_size=12, progress=False)
    with pytest.raises(ValueError, match="overlap"):
        quilt_texture(sample, 8, block_size=6, overlap=6, progress=False)
    with pytest.raises(ValueError, match="size"):
        synthesize_texture(sample, (0, 5), window_size=3, progress=False)
    with pytest.raises(ValueError, match="sample must have shape"):
        quilt_texture(sample[None], 8, progress=False)
