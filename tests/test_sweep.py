"""config_grid / sweep / SweepResult (minidl.train): choose a hyper-parameter by a validation
metric, not by the training loss (CS231n lecture 8, the multi-task loss's weight).

The toy "training" below is a function of the config, so each test knows the right answer: the
loss grows with the weight (as ``L_cls + w · L_box`` does) while the metric peaks in the middle.
"""
import math

import matplotlib
import pytest

matplotlib.use("Agg")

from minidl import backend  # noqa: E402
from minidl.train import SweepResult, SweepRow, config_grid, sweep  # noqa: E402

WEIGHTS = (0.1, 1.0, 10.0, 100.0)
METRIC_OF = {0.1: 0.2, 1.0: 0.7, 10.0: 0.9, 100.0: 0.5}    # the metric's best: 10


def toy_train(config):
    # the "model" is the config itself; the loss scales with the weight: 0.1 has the LOWEST loss
    return config, config["w"] * (2.0 if config.get("kind") == "b" else 1.0)


def toy_eval(config):
    return {"acc": METRIC_OF[config["w"]] + (0.01 if config.get("kind") == "b" else 0.0), "other": -1.0}


def test_grid_order_and_size():
    # catches: wrong product size, last axis varying slowest, axes reordered, values copied wrong
    grid = config_grid(w=(0.1, 1.0, 10.0), kind=("a", "b"), lr=(1e-3,))
    assert len(grid) == 3 * 2 * 1
    assert grid == [{"w": 0.1, "kind": "a", "lr": 1e-3}, {"w": 0.1, "kind": "b", "lr": 1e-3},
                    {"w": 1.0, "kind": "a", "lr": 1e-3}, {"w": 1.0, "kind": "b", "lr": 1e-3},
                    {"w": 10.0, "kind": "a", "lr": 1e-3}, {"w": 10.0, "kind": "b", "lr": 1e-3}]
    assert [list(c) for c in grid] == [["w", "kind", "lr"]] * 6         # keys in keyword order


def test_grid_rejects_bad_axes():
    # catches: an empty grid silently returned; a string axis iterated letter by letter
    with pytest.raises(ValueError, match="at least one axis"):
        config_grid()
    with pytest.raises(ValueError, match="'w' has no values"):
        config_grid(w=())
    with pytest.raises(ValueError, match="'kind' must be a list or tuple"):
        config_grid(kind="l2")


def test_best_is_chosen_by_metric_not_by_loss():
    # catches: choosing by the loss (would give 0.1), by the last/first row, or argmin of the metric
    result = sweep(config_grid(w=WEIGHTS), toy_train, toy_eval, "acc", progress=False)
    assert [row.config["w"] for row in result.rows] == list(WEIGHTS)
    assert result.best.config == {"w": 10.0} and result.best.metrics["acc"] == pytest.approx(0.9)
    assert result.best_by_loss.config == {"w": 0.1}                     # the lowest loss is the worst metric
    assert [row.loss for row in result.rows] == list(WEIGHTS)
    assert result.rows[2].metrics == {"acc": pytest.approx(0.9), "other": -1.0}
    assert all(row.seconds >= 0 for row in result.rows)


def test_two_axes_metric_picks_across_both():
    # catches: a best that only looks at one axis, or at the loss (0.1, "a")
    result = sweep(config_grid(w=WEIGHTS, kind=("a", "b")), toy_train, toy_eval, "acc", progress=False)
    assert result.best.config == {"w": 10.0, "kind": "b"}
    assert result.best_by_loss.config == {"w": 0.1, "kind": "a"}


def test_lower_is_better():
    # catches: higher_is_better ignored (would pick 10)
    result = sweep(config_grid(w=WEIGHTS), toy_train, toy_eval, "acc", higher_is_better=False, progress=False)
    assert result.best.config == {"w": 0.1}


def test_ties_go_to_the_first_config():
    # catches: ">=" instead of ">" (picks the last tied), or a sort that is not stable
    tied = {0.1: 0.2, 1.0: 0.7, 10.0: 0.7, 100.0: 0.7}
    result = sweep(config_grid(w=WEIGHTS), toy_train, lambda c: tied[c["w"]], "acc", progress=False)
    assert result.best.config == {"w": 1.0}
    low = {0.1: 0.5, 1.0: 0.2, 10.0: 0.2, 100.0: 0.9}
    result = sweep(config_grid(w=WEIGHTS), toy_train, lambda c: low[c["w"]], "err", higher_is_better=False,
                   progress=False)
    assert result.best.config == {"w": 1.0}
    # equal losses: best_by_loss keeps the first too
    result = sweep(config_grid(w=WEIGHTS), lambda c: (c, 1.0), toy_eval, "acc", progress=False)
    assert result.best_by_loss.config == {"w": 0.1}


def test_number_from_evaluate_is_stored_under_the_metric():
    # catches: a plain float from evaluate_fn rejected or stored under another name
    result = sweep([{"w": 1.0}], toy_train, lambda c: 0.25, "acc", progress=False)
    assert result.rows[0].metrics == {"acc": 0.25}


def test_bad_input_is_rejected_clearly():
    # catches: an empty sweep returning a result whose .best crashes later; a typo in the metric name
    # silently ranking by KeyError/None; a NaN metric ranking anywhere (NaN compares False both ways)
    with pytest.raises(ValueError, match="configs is empty"):
        sweep([], toy_train, toy_eval, "acc", progress=False)
    with pytest.raises(ValueError, match="'acuracy' is not among.*'acc'"):
        sweep(config_grid(w=WEIGHTS), toy_train, toy_eval, "acuracy", progress=False)
    nan_at_10 = {**METRIC_OF, 10.0: float("nan")}
    with pytest.raises(ValueError, match=r"\{'w': 10.0\} is nan"):
        sweep(config_grid(w=WEIGHTS), toy_train, lambda c: {"acc": nan_at_10[c["w"]]}, "acc", progress=False)
    with pytest.raises(TypeError, match=r"\(trained, final_loss\)"):
        sweep([{"w": 1.0}], lambda c: 1.0, toy_eval, "acc", progress=False)


def test_nan_loss_is_kept_but_never_chosen_by_loss():
    # catches: min() over a NaN (which can return the NaN row) as the "lowest loss"
    losses = {0.1: float("nan"), 1.0: 3.0, 10.0: 2.0, 100.0: 5.0}
    result = sweep(config_grid(w=WEIGHTS), lambda c: (c, losses[c["w"]]), toy_eval, "acc", progress=False)
    assert math.isnan(result.rows[0].loss)
    assert result.best_by_loss.config == {"w": 10.0}


def test_seed_resets_the_default_generator_before_each_config():
    # catches: seed ignored (each config would draw different numbers from the shared generator)
    draws = []

    def train(config):
        draws.append(backend.get_rng().random())
        return config, 1.0
    sweep(config_grid(w=WEIGHTS), train, toy_eval, "acc", progress=False, seed=5)
    assert len(set(draws)) == 1


def test_table_has_one_row_per_config_and_marks_both_choices():
    # catches: rows dropped/duplicated, columns misaligned with the header, choices unmarked
    result = sweep(config_grid(w=WEIGHTS, kind=("a", "b")), toy_train, toy_eval, "acc", progress=False)
    rows, header = result.table()
    assert header == ["w", "kind", "train loss", "acc", "other", "seconds", "picked by"]
    assert len(rows) == 8 and all(len(r) == len(header) for r in rows)
    assert rows[0][:5] == [0.1, "a", 0.1, pytest.approx(0.2), -1.0]
    assert [r[-1] for r in rows] == ["loss", "", "", "", "", "metric", "", ""]
    text = str(result)
    assert len(text.splitlines()) == 9 and "picked by" in text


def test_table_marks_one_row_picked_by_both():
    result = sweep(config_grid(w=WEIGHTS), lambda c: (c, abs(c["w"] - 10.0)), toy_eval, "acc", progress=False)
    assert [r[-1] for r in result.table()[0]] == ["", "", "metric + loss", ""]


def test_plot_draws_one_bar_per_config_in_each_panel():
    # catches: bars missing, the chosen config not marked (red) or the loss's choice not hatched
    import matplotlib.pyplot as plt
    result = sweep(config_grid(w=WEIGHTS, kind=("a", "b")), toy_train, toy_eval, "acc", progress=False)
    fig = result.plot()
    loss_ax, metric_ax = fig.axes
    for ax in (loss_ax, metric_ax):
        bars = ax.patches
        assert len(bars) == 8
        red = [k for k, bar in enumerate(bars) if bar.get_facecolor()[:3] == matplotlib.colors.to_rgb("tab:red")]
        assert red == [5]                                      # (10, "b"): the metric's choice
        assert [k for k, bar in enumerate(bars) if bar.get_hatch()] == [0]    # (0.1, "a"): the loss's choice
    assert [bar.get_width() for bar in metric_ax.patches] == pytest.approx([r.metrics["acc"] for r in result.rows])
    assert [bar.get_width() for bar in loss_ax.patches] == pytest.approx([r.loss for r in result.rows])
    plt.close(fig)
    fig, axes = plt.subplots(1, 2)
    assert result.plot(axes) is fig
    with pytest.raises(ValueError, match="pair of Axes"):
        result.plot(axes[0])
    plt.close(fig)


def test_sweep_result_rejects_no_rows():
    with pytest.raises(ValueError, match="no rows"):
        SweepResult([], "acc")
    assert SweepResult([SweepRow({"w": 1}, 0.5, {"acc": 1.0})], "acc").best.config == {"w": 1}
