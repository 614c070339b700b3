"""minisc.viz: every function builds the figure it promises, on small inputs, headless."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from minisc import viz  # noqa: E402


@pytest.fixture(autouse=True)
def no_show_and_close(monkeypatch):
    """No viz function may call plt.show(); every figure is closed after each test."""
    def refuse():
        raise AssertionError("viz functions must return the figure, not call plt.show()")
    monkeypatch.setattr(plt, "show", refuse)
    yield
    plt.close("all")


def image_axes(fig):
    """The axes that show an image (not colour bars, which hold no AxesImage of their own)."""
    return [ax for ax in fig.axes if ax.images]


def rng():
    return np.random.default_rng(0)


# ---------------------------------------------------------------------------------------------
def test_plot_digits_uint8_with_labels():
    images = rng().integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    fig = viz.plot_digits(images, labels=np.arange(10), n=6, title="digits")
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == 6 and len(image_axes(fig)) == 6
    assert [ax.get_title() for ax in fig.axes] == [str(i) for i in range(6)]
    assert fig.axes[0].images[0].get_clim() == (0, 255)


def test_plot_digits_channels_first_floats_and_wrong_predictions():
    images = rng().random((5, 1, 28, 28)).astype(np.float32)
    labels = np.array([1, 2, 3, 4, 5])
    preds = np.array([1, 2, 0, 4, 0])
    fig = viz.plot_digits(images, labels, preds, n=50)          # n larger than N: all 5
    assert len(fig.axes) == 5
    colors = [ax.title.get_color() for ax in fig.axes]
    assert colors[2] == colors[4] == "crimson"
    assert colors[0] == "black"
    assert fig.axes[2].get_title() == "3 -> 0"


def test_plot_digits_rejects_multichannel_batches():
    with pytest.raises(ValueError, match="one channel"):
        viz.plot_digits(np.zeros((2, 3, 28, 28)))


def test_plot_class_balance_draws_one_bar_per_class_and_split():
    labels = {"train": np.repeat(np.arange(10), 3), "val": np.arange(10)}
    fig = viz.plot_class_balance(labels)
    (ax,) = fig.axes
    heights = [bar.get_height() for bar in ax.patches]
    assert len(heights) == 20
    assert heights[:10] == [3] * 10 and heights[10:] == [1] * 10


# ---------------------------------------------------------------------------------------------
def test_plot_kernels_single_channel_grid_is_symmetric_around_zero():
    w = rng().normal(size=(5, 1, 3, 3))
    w[2, 0, 1, 1] = 4.0                                           # the largest |weight|
    p = np.array([0.5, 1.0, 2.0, 3.0, 8.0])
    fig = viz.plot_kernels(w, p=p, normalize=False)
    tiles = image_axes(fig)
    assert len(tiles) == 5
    assert len(fig.axes) == 6                                     # + the colour bar
    for ax in tiles:
        norm = ax.images[0].norm
        assert norm.vmin == -norm.vmax
        assert norm.vmax == pytest.approx(4.0)
    assert "p=8.00" in tiles[4].get_title()
    assert tiles[0].images[0].get_cmap().name == "RdBu_r"


def test_plot_kernels_negative_extreme_sets_the_scale_too():
    w = np.zeros((2, 1, 3, 3))
    w[0, 0, 0, 0] = -2.5
    w[1, 0, 0, 0] = 1.0
    norm = image_axes(viz.plot_kernels(w, normalize=False))[0].images[0].norm
    assert (norm.vmin, norm.vmax) == (-2.5, 2.5)


def test_plot_kernels_multichannel_shows_most_energetic_channels():
    w = 0.01 * rng().normal(size=(4, 6, 3, 3))
    w[:, 4] += 1.0                                               # channels 4 and 1 dominate
    w[:, 1] -= 1.0
    fig = viz.plot_kernels(w, p=np.ones(4), max_channels=2, normalize=False)
    tiles = image_axes(fig)
    assert len(tiles) == 4 * 2
    assert [ax.get_title() for ax in tiles[:2]] == ["in 1", "in 4"]
    norms = {(ax.images[0].norm.vmin, ax.images[0].norm.vmax) for ax in tiles}
    assert len(norms) == 1
    vmin, vmax = norms.pop()
    assert vmin == -vmax


def test_plot_kernels_limits_and_normalize():
    w = rng().normal(size=(70, 1, 5, 5))
    w[3] *= 100.0
    fig = viz.plot_kernels(w, max_kernels=9, normalize=True)
    tiles = image_axes(fig)
    assert len(tiles) == 9
    for ax in tiles:                                              # every kernel at full contrast
        assert np.abs(ax.images[0].get_array()).max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"\(K, C, kh, kw\)"):
        viz.plot_kernels(np.zeros((3, 5, 5)))


def test_plot_kernels_scales_each_kernel_by_default():
    """A kernel with tiny weights next to a large one is drawn at full contrast, not blank."""
    w = rng().normal(size=(3, 1, 5, 5))
    w[0] *= 1e-3
    tiles = image_axes(viz.plot_kernels(w))
    for ax in tiles:
        assert np.abs(ax.images[0].get_array()).max() == pytest.approx(1.0)
    shared = image_axes(viz.plot_kernels(w, normalize=False))
    assert np.abs(shared[0].images[0].get_array()).max() < 0.01 * shared[0].images[0].norm.vmax


def test_plot_feature_maps_counts_limits_and_scale():
    maps = rng().normal(size=(10, 6, 6))
    fig = viz.plot_feature_maps(maps, max_maps=4)
    assert len(image_axes(fig)) == 4 and len(fig.axes) == 5       # + colour bar
    norm = image_axes(fig)[0].images[0].norm
    assert norm.vmin == -norm.vmax
    assert norm.vmax == pytest.approx(np.abs(maps[:4]).max())


def test_plot_feature_maps_batch_of_one_input_image_and_mixed_sizes():
    fig = viz.plot_feature_maps(np.ones((1, 3, 4, 4)), names=["a", "b", "c"], vmax=1.0,
                                image=np.zeros((1, 6, 6)))
    tiles = image_axes(fig)
    assert len(tiles) == 4
    assert [ax.get_title() for ax in tiles] == ["input", "a", "b", "c"]
    assert tiles[0].images[0].get_cmap().name == "gray_r"
    fig = viz.plot_feature_maps([np.ones((8, 8)), -np.ones((4, 4))])
    assert [ax.images[0].get_array().shape for ax in image_axes(fig)] == [(8, 8), (4, 4)]


def test_plot_small_arrays_writes_every_value():
    arrays = [np.arange(9.0).reshape(3, 3) - 4, np.array([[0.5, -0.25]])]
    fig = viz.plot_small_arrays(arrays, names=["a", "b"], fmt="{:.2f}")
    assert len(fig.axes) == 2
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert len(texts) == 11
    assert "-4.00" in texts and "-0.25" in texts
    shared = {ax.images[0].norm.vmax for ax in fig.axes}
    assert shared == {4.0}
    own = viz.plot_small_arrays(arrays, fmt=None, shared_scale=False)
    assert [ax.images[0].norm.vmax for ax in own.axes] == [4.0, 0.5]
    assert not any(ax.texts for ax in own.axes)


def test_plot_small_arrays_wraps_into_a_grid():
    fig = viz.plot_small_arrays([np.eye(2)] * 6, cols=4)
    assert len(fig.axes) == 6


def test_plot_response_curves_panels():
    fig = viz.plot_response_curves((0.5, 1, 2))
    (ax,) = fig.axes
    assert len(ax.get_legend().get_texts()) == 3
    line = ax.get_legend().get_lines()[2]                       # p = 2
    assert line.get_label() == "p = 2"
    fig = viz.plot_response_curves((1, 4), q_values=(0, 0.1), cos_angle=0.5,
                                   norm_marks={"noise": 0.05})
    assert len(fig.axes) == 2
    q_ax = fig.axes[1]
    curves = [ln for ln in q_ax.get_lines() if ln.get_label().startswith("q =")]
    flat = curves[0].get_ydata()
    assert np.allclose(flat, 0.5)                                 # q = 0: c independent of |s|
    assert curves[1].get_ydata()[0] < 0.01                        # q = 0.1 silences |s| = 1e-3
    assert len(viz.plot_response_curves(None, q_values=(0.1,)).axes) == 1
    with pytest.raises(ValueError):
        viz.plot_response_curves(None)


# ---------------------------------------------------------------------------------------------
def history(n=4, val=True):
    h = {"epoch": list(range(1, n + 1)), "train_loss": [1.0 / e for e in range(1, n + 1)],
         "train_acc": [0.5 + 0.1 * e for e in range(n)], "lr": [0.01] * n, "seconds": [1.0] * n}
    if val:
        h["val_loss"] = [None] + [1.2 / e for e in range(2, n + 1)]
        h["val_acc"] = [None, 0.6, 0.8, 0.7][:n]
    return h


def test_plot_training_curves_two_panels_with_validation():
    fig = viz.plot_training_curves(history())
    ax_loss, ax_acc = fig.axes
    assert len(ax_loss.get_lines()) == 2 and len(ax_acc.get_lines()) == 3   # + the best's star
    val_acc = ax_acc.get_lines()[1].get_ydata()
    assert np.isnan(val_acc[0]) and val_acc[2] == 0.8
    # the last validation accuracy (the one a run reports) is written; the better best is starred
    assert any("last 70.00%" in t.get_text() for t in ax_acc.texts)
    assert not any("80.00%" in t.get_text() for t in ax_acc.texts)
    labels = [line.get_label() for line in ax_acc.get_lines()]
    assert any("best validation 80.00% (epoch 3)" in label for label in labels)
    # when the last epoch is the best, there is no star
    final_best = viz.plot_training_curves(dict(history(), val_acc=[None, 0.6, 0.7, 0.8])).axes[1]
    assert len(final_best.get_lines()) == 2


def test_plot_training_curves_without_validation_and_bad_histories():
    fig = viz.plot_training_curves(history(val=False))
    assert [len(ax.get_lines()) for ax in fig.axes] == [1, 1]
    all_none = dict(history(), val_acc=[None] * 4, val_loss=[None] * 4)
    assert [len(ax.get_lines()) for ax in viz.plot_training_curves(all_none).axes] == [1, 1]
    with pytest.raises(ValueError, match="same length"):
        viz.plot_training_curves(dict(history(), train_acc=[0.5]))
    with pytest.raises(KeyError, match="train_loss"):
        viz.plot_training_curves({"epoch": [1], "train_acc": [0.5]})


def test_confusion_matrix_exact_counts():
    y_true = [0, 0, 1, 2, 2, 2, 3]
    y_pred = [0, 1, 1, 2, 0, 2, 3]
    cm = viz.confusion_matrix(y_true, y_pred, n_classes=4)
    expected = np.array([[1, 1, 0, 0],
                         [0, 1, 0, 0],
                         [1, 0, 2, 0],
                         [0, 0, 0, 1]])
    np.testing.assert_array_equal(cm, expected)
    assert cm.dtype.kind == "i" and cm.sum() == 7


def test_confusion_matrix_checks_its_inputs():
    assert viz.confusion_matrix(np.array([9], np.uint8), np.array([9], np.uint8))[9, 9] == 1
    with pytest.raises(ValueError, match="y_pred"):
        viz.confusion_matrix([0, 1], [0, 10])
    with pytest.raises(ValueError):
        viz.confusion_matrix([0, 1], [0])


def test_plot_confusion_matrix_writes_counts():
    cm = np.array([[5, 1, 0], [0, 7, 2], [3, 0, 9]])
    fig = viz.plot_confusion_matrix(cm, class_names=["a", "b", "c"])
    ax = fig.axes[0]
    assert len(fig.axes) == 2                                     # matrix + colour bar
    texts = sorted(int(t.get_text()) for t in ax.texts)
    assert texts == sorted(v for v in cm.ravel() if v)
    assert "21 of 27" in ax.get_title()
    with pytest.raises(ValueError):
        viz.plot_confusion_matrix(np.zeros((2, 3)))


def test_plot_misclassified_orders_by_confidence():
    images = np.zeros((6, 28, 28), np.uint8)
    y_true = np.array([0, 1, 2, 3, 4, 5])
    y_pred = np.array([0, 7, 2, 8, 9, 5])                         # three mistakes
    probs = np.full((6, 10), 0.01)
    probs[1, 7], probs[3, 8], probs[4, 9] = 0.40, 0.95, 0.70
    fig = viz.plot_misclassified(images, y_true, y_pred, probs=probs)
    assert [ax.get_title() for ax in fig.axes] == ["3 -> 8 (95%)", "4 -> 9 (70%)", "1 -> 7 (40%)"]
    assert len(viz.plot_misclassified(images, y_true, y_pred, max_n=2).axes) == 2


def test_plot_misclassified_without_mistakes():
    fig = viz.plot_misclassified(np.zeros((3, 28, 28)), [1, 2, 3], [1, 2, 3])
    (ax,) = fig.axes
    assert "No mistakes" in ax.texts[0].get_text()


def test_plot_p_histogram_one_panel_per_layer():
    p = {"scs 0": np.linspace(0.5, 3, 24), "scs 1": np.full(48, 2.0), "scs 2": [0.3, 0.9]}
    fig = viz.plot_p_histogram(p, bins=10)
    assert len(fig.axes) == 3
    counts = [sum(bar.get_height() for bar in ax.patches) for ax in fig.axes]
    assert counts == [24, 48, 2]
    with pytest.raises(ValueError):
        viz.plot_p_histogram({})


# ---------------------------------------------------------------------------------------------
def snapshots(n_epochs=3, k=4):
    r = rng()
    return {e: r.normal(size=(k, 1, 3, 3)) * (10.0 ** -e) for e in range(n_epochs)}


def test_plot_kernels_at_epochs_one_row_per_epoch_each_kernel_scaled():
    snaps = snapshots()
    fig = viz.plot_kernels_at_epochs(snaps, epochs=[0, 2])
    tiles = image_axes(fig)
    assert len(tiles) == 2 * 4
    for ax in tiles:                                         # epoch 2 has weights ~1e-2: not blank
        assert np.abs(ax.images[0].get_array()).max() == pytest.approx(1.0)
    assert [tiles[0].get_ylabel(), tiles[4].get_ylabel()] == ["epoch 0", "epoch 2"]
    with pytest.raises(ValueError, match="no snapshot for epochs"):
        viz.plot_kernels_at_epochs(snaps, epochs=[5])


def p_q_history():
    return {"epoch": [0, 1, 2],
            "p": [[[2.0, 2.0], [2.0] * 3], [[1.5, 2.5], [1.0, 2.0, 3.0]], [[1.0, 3.0], [0.5, 2.0, 4.0]]],
            "q": [[0.1, 0.1], [0.05, 0.2], [0.01, 0.3]]}


def test_plot_p_q_draws_p_mean_and_band_and_q_per_layer():
    fig = viz.plot_p_q(p_q_history())
    ax_p, ax_q = fig.axes
    means = [line.get_ydata() for line in ax_p.get_lines()]
    assert np.allclose(means[0], [2.0, 2.0, 2.0]) and np.allclose(means[1], [2.0, 2.0, 2.1666667])
    assert len(ax_p.collections) == 2                        # one min..max band per layer
    assert np.allclose(ax_q.get_lines()[1].get_ydata(), [0.1, 0.2, 0.3])
    assert ax_q.get_yscale() == "log"
    assert all(t == int(t) for t in ax_p.get_xticks())      # whole epochs only
    with pytest.raises(KeyError):
        viz.plot_p_q({"epoch": [1]})


def test_animate_kernels_writes_a_gif_with_one_frame_per_snapshot(tmp_path):
    from PIL import Image

    path = viz.animate_kernels(snapshots(n_epochs=4), tmp_path / "kernels.gif", fps=4)
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == 4
    assert not plt.get_fignums()                             # the figure was closed


def test_confusion_matrix_refuses_float_labels_and_columns():
    y = np.array([0, 1, 2, 3])
    with pytest.raises(TypeError, match="integers"):
        viz.confusion_matrix(y.astype(float) + 0.7, y)
    with pytest.raises(ValueError, match="shape"):
        viz.confusion_matrix(y, y[:, None])
