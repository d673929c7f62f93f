"""fit() and non-finite numbers (minidl/train.py).

A NaN or infinite loss is caught *before* backward and the optimizer step, so the weights stay
those of the last good step: ``on_nonfinite="raise"`` (default) stops with FloatingPointError,
``"skip"`` skips that batch with a RuntimeWarning and counts it in ``history["skipped"]``. Both
messages name the step (from 1, over all epochs), the epoch and the batch index (from 0). A step
that makes the weights non-finite although the loss was finite stops training in both modes.
"""
import numpy as np
import pytest

from minidl import nn, optim, train
from minidl import functional as F

# NumPy's own notes about the NaNs and overflows these tests provoke on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                                        "ignore:invalid value encountered:RuntimeWarning")

RNG = np.random.default_rng(0)
X = [RNG.standard_normal((8, 3)) for _ in range(3)]
Y = [RNG.integers(0, 3, 8) for _ in range(3)]
NAN_INPUT = X[1] * np.array([1.0, np.nan, 1.0])          # NaN logits: NaN loss and NaN gradients
ALL_IGNORED = np.full(8, -100)                             # every target ignored: NaN mean, zero gradient


class Epochs:
    """A loader of three batches per epoch; ``bad`` maps (epoch, batch index) -> a replacement batch."""

    def __init__(self, bad=None):
        self.bad, self.epoch = bad or {}, -1

    def __len__(self):
        return 3

    def __iter__(self):
        self.epoch += 1
        for i in range(3):
            yield self.bad.get((self.epoch, i), (X[i], Y[i]))


def new_model():
    return nn.Linear(3, 3, rng=1, dtype=np.float64)


def new_optimizer(model):
    # Momentum matters: a batch skipped wrongly (a step with a zero or NaN gradient) would still
    # move the weights, so comparing with a twin trained without that batch catches it.
    return optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def trained_on(batches):
    """The weights of a twin model trained on exactly ``batches``, in order."""
    model = new_model()
    train.fit(model, batches, F.cross_entropy, new_optimizer(model), progress=False)
    return model.weight.numpy(), model.bias.numpy()


def good_batches(epochs, without=()):
    return [(X[i], Y[i]) for e in range(epochs) for i in range(3) if (e, i) not in without]


def assert_weights(model, expected):
    np.testing.assert_array_equal(model.weight.numpy(), expected[0])
    np.testing.assert_array_equal(model.bias.numpy(), expected[1])


def test_nan_loss_stops_before_the_step_naming_step_epoch_and_batch():
    model = new_model()
    loader = Epochs({(1, 1): (NAN_INPUT, Y[1])})            # epoch 2, batch index 1: global step 5
    with pytest.raises(FloatingPointError) as info:
        train.fit(model, loader, F.cross_entropy, new_optimizer(model), epochs=2, progress=False)
    message = str(info.value)
    assert "the loss is nan at step 5 (epoch 2, batch index 1)" in message
    assert "on_nonfinite='skip'" in message
    assert np.isfinite(model.weight.numpy()).all()
    assert_weights(model, trained_on(good_batches(2)[:4]))   # exactly the 4 steps before it


def test_inf_loss_is_caught_too():
    model = new_model()
    huge = [(X[0], Y[0]), (X[1] * 1e300, Y[1])]             # float64 overflow: an infinite loss

    def squared(out, target):
        return ((out * out).sum() * 1e300)

    with pytest.raises(FloatingPointError, match=r"the loss is inf at step 2 \(epoch 1, batch index 1\)"):
        train.fit(model, huge, squared, new_optimizer(model), progress=False)
    assert np.isfinite(model.weight.numpy()).all()


def test_all_ignored_targets_raise_by_default_and_say_why():
    model = new_model()
    before = model.weight.numpy().copy()
    with pytest.raises(FloatingPointError, match=r"step 1 \(epoch 1, batch index 0\).*ignore_index"):
        train.fit(model, [(X[0], ALL_IGNORED)], F.cross_entropy, new_optimizer(model), progress=False)
    np.testing.assert_array_equal(model.weight.numpy(), before)


def test_skip_leaves_the_weights_of_a_run_without_those_batches():
    model = new_model()
    bad = {(0, 2): (NAN_INPUT, Y[1]), (1, 0): (X[0], ALL_IGNORED)}    # steps 3 and 4
    with pytest.warns(RuntimeWarning) as caught:
        history = train.fit(model, Epochs(bad), F.cross_entropy, new_optimizer(model), epochs=2,
                            progress=False, on_nonfinite="skip")
    messages = [str(w.message) for w in caught if "fit:" in str(w.message)]
    assert len(messages) == 2
    assert "step 3 (epoch 1, batch index 2)" in messages[0] and "skipping" in messages[0]
    assert "step 4 (epoch 2, batch index 0)" in messages[1]
    assert history["skipped"] == 2
    assert len(history["loss"]) == 6                        # one entry per step, skipped ones too
    assert np.isnan(history["loss"][2]) and np.isnan(history["loss"][3])
    assert np.isfinite(history["epoch_loss"]).all()          # the means of the applied batches
    assert history["epoch_loss"][0] == pytest.approx(np.mean(history["loss"][:2]))
    assert_weights(model, trained_on(good_batches(2, without=bad)))


def test_clean_runs_skip_nothing():
    model = new_model()
    history = train.fit(model, Epochs(), F.cross_entropy, new_optimizer(model), progress=False,
                        on_nonfinite="skip")
    assert history["skipped"] == 0 and len(history["loss"]) == 3


@pytest.mark.parametrize("mode", ["raise", "skip"])
def test_weights_made_non_finite_by_a_finite_loss_stop_training(mode):
    model = nn.Linear(3, 3, rng=1)                            # float32, and gradients ~100:
    batches = [((X[0] * 100).astype(np.float32), Y[0])]       # lr 1e38 overflows the update
    with pytest.raises(FloatingPointError) as info:
        train.fit(model, batches, F.cross_entropy, optim.SGD(model.parameters(), lr=1e38),
                  progress=False, on_nonfinite=mode)
    message = str(info.value)
    assert "step 1 (epoch 1, batch index 0)" in message and "non-finite" in message
    assert "'weight'" in message


def test_on_nonfinite_is_validated():
    model = new_model()
    with pytest.raises(ValueError, match="on_nonfinite must be 'raise' or 'skip', got 'ignore'"):
        train.fit(model, Epochs(), F.cross_entropy, new_optimizer(model), progress=False,
                  on_nonfinite="ignore")
