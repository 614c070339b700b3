"""Pictures of digits, kernels, feature maps and training runs, with Matplotlib.

Every function here builds one figure and returns it (a ``matplotlib.figure.Figure``); none
of them calls ``plt.show()``. Save a figure with ``fig.savefig("name.png")``, show it with
``plt.show()``, and close it with ``plt.close(fig)`` when you are done.

Colours follow two conventions throughout:

- images of digits use ``"gray_r"``: ink is dark, paper is white;
- signed numbers (kernels, feature maps, gradients) use a *diverging* colour map, ``"RdBu_r"``,
  with limits symmetric around zero: white is exactly 0, red is positive, blue is negative,
  and equally strong colours mean equally large absolute values.

Array shapes are given in every docstring; "(N, 28, 28) or (N, 1, 28, 28)" means either a
stack of plain images or a channels-first batch with one channel.
"""

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.ticker import MaxNLocator, PercentFormatter

from .losses import check_labels

DIVERGING = "RdBu_r"     # signed values: blue < 0 < red, white at 0
DIGITS = "gray_r"        # digit images: dark ink on white paper


# ---------------------------------------------------------------------------------------------
# small helpers
def _grid(n, max_cols):
    """(rows, cols) of a grid holding n tiles, at most max_cols wide."""
    cols = max(1, min(n, max_cols))
    return max(1, math.ceil(n / cols)), cols


def _tiles(n, max_cols, tile_size=1.2, extra_width=0.0, extra_height=0.6, caption_lines=1):
    """A figure with exactly n tile axes (no ticks) laid out in a grid; returns (fig, axes list).

    Each tile is tile_size inches square plus room for caption_lines lines of caption above.
    """
    rows, cols = _grid(n, max_cols)
    row_height = tile_size + 0.18 * caption_lines
    fig, grid = plt.subplots(rows, cols, squeeze=False, layout="constrained",
                             figsize=(cols * tile_size + extra_width, rows * row_height + extra_height))
    axes = list(grid.ravel())
    for ax in axes[n:]:           # remove the unused cells so fig.axes has one axis per tile
        ax.remove()
    axes = axes[:n]
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def _symmetric_norm(values, vmax=None):
    """A colour scale from -m to +m, m = vmax or the largest |value| (never 0)."""
    if vmax is None:
        vmax = float(np.max(np.abs(values))) if np.size(values) else 1.0
    vmax = float(vmax) if vmax > 0 else 1.0
    return Normalize(vmin=-vmax, vmax=vmax)


def _as_image_stack(images, who):
    """(N, H, W) from (N, H, W), (N, 1, H, W) or a single (H, W) image."""
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim == 4:
        if images.shape[1] != 1:
            raise ValueError(f"{who}: expected one channel in (N, 1, H, W), got shape {images.shape}")
        images = images[:, 0]
    if images.ndim != 3:
        raise ValueError(f"{who}: expected images of shape (N, H, W) or (N, 1, H, W), "
                         f"got shape {images.shape}")
    return images


def _pixel_range(images):
    """Colour limits: 0..255 for uint8, else the data's own min and max (0..1 if it fits)."""
    if images.dtype == np.uint8:
        return 0, 255
    lo, hi = float(np.min(images)), float(np.max(images))
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    return lo, hi if hi > lo else lo + 1.0


# ---------------------------------------------------------------------------------------------
# digits
def plot_digits(images, labels=None, predictions=None, n=32, title=None, cols=8):
    """A grid of digit images, optionally captioned with labels and predictions.

    Parameters
    ----------
    images : (N, 28, 28) or (N, 1, 28, 28), uint8 (0..255) or float
        Any image size works; float images are shown on one shared grey scale.
    labels : (N,) ints, optional
        Captions each tile with its label.
    predictions : (N,) ints, optional
        Adds the prediction; wrong ones are captioned in red.
    n : int
        Show the first n images (at most N).
    title : str, optional
    cols : int
        Tiles per row.

    Returns
    -------
    matplotlib.figure.Figure with one axis per image shown.
    """
    images = _as_image_stack(images, "plot_digits")
    n = max(1, min(int(n), len(images)))
    vmin, vmax = _pixel_range(images[:n])
    fig, axes = _tiles(n, cols, tile_size=1.05, extra_height=0.5 if title else 0.2)
    for i, ax in enumerate(axes):
        ax.imshow(images[i], cmap=DIGITS, vmin=vmin, vmax=vmax, interpolation="nearest")
        if labels is not None and predictions is not None:
            right = int(labels[i]) == int(predictions[i])
            ax.set_title(f"{int(labels[i])} -> {int(predictions[i])}", fontsize=8,
                         color="black" if right else "crimson")
        elif labels is not None:
            ax.set_title(str(int(labels[i])), fontsize=8)
        elif predictions is not None:
            ax.set_title(f"pred {int(predictions[i])}", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_class_balance(labels_by_split, n_classes=10, class_names=None, title=None):
    """Bar chart of how many examples each class has, one group of bars per class.

    Parameters
    ----------
    labels_by_split : dict[str, (N,) ints], e.g. {"train": y_train, "validation": y_val}
    n_classes : int
    class_names : list of n_classes str, optional (default "0" ... "9")

    Returns
    -------
    Figure with one axis; the count is written above every bar.
    """
    names = [str(i) for i in range(n_classes)] if class_names is None else list(class_names)
    fig, ax = plt.subplots(layout="constrained", figsize=(max(6.0, 0.75 * n_classes + 1.5), 3.6))
    n_splits = max(1, len(labels_by_split))
    width = 0.8 / n_splits
    x = np.arange(n_classes)
    for j, (split, labels) in enumerate(labels_by_split.items()):
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes)[:n_classes]
        bars = ax.bar(x + (j - (n_splits - 1) / 2) * width, counts, width, label=f"{split} ({counts.sum():,})")
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(x, names)
    ax.set_xlabel("class")
    ax.set_ylabel("examples")
    ax.margins(y=0.12)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_title(title or "Examples per class")
    return fig


# ---------------------------------------------------------------------------------------------
# kernels and feature maps
def plot_kernels(w, p=None, title=None, max_kernels=64, max_channels=8, normalize=True, cols=8):
    """The kernels of a SharpCosSim2D or Conv2D layer, in a diverging colour map.

    Parameters
    ----------
    w : (K, C, kh, kw)
        The kernels, e.g. ``layer.params["w"]``.
    p : (K,), optional
        Sharpening exponents; each kernel is captioned with its p.
    title : str, optional
    max_kernels : int
        Show the first max_kernels kernels.
    max_channels : int
        For C > 1, at most this many input-channel columns (see below).
    normalize : bool
        True (the default): per-kernel scaling. Each kernel is divided by its own largest
        |weight| first. Cosine similarity ignores a kernel's length, so for SCS kernels this
        shows every kernel's *shape* at full contrast; on one shared scale, a kernel with
        small weights would look blank. False: the raw weights on one shared scale.
    cols : int
        Tiles per row when C == 1.

    Layout
    ------
    C == 1: one tile per kernel, in a grid ``cols`` wide.
    C > 1: one row per kernel, one column per input channel. When C > max_channels, only the
    max_channels input channels with the largest total energy (sum of squared weights over
    the kernels shown) get a column, in channel order; their indices head the columns.

    All tiles share one colour scale from -m to +m (m = the largest |weight| shown, 1 with
    normalize): white is 0, red positive, blue negative. A colour bar sits on the right.

    Returns
    -------
    Figure with one image axis per tile, plus the colour bar's axis.
    """
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(f"plot_kernels: expected w of shape (K, C, kh, kw), got shape {w.shape}")
    n_total = w.shape[0]
    n_k = max(1, min(int(max_kernels), n_total))
    w = w[:n_k]
    if normalize:
        peak = np.max(np.abs(w), axis=(1, 2, 3), keepdims=True)
        w = w / np.where(peak > 0, peak, 1.0)
    p = None if p is None else np.asarray(p, dtype=np.float64).reshape(-1)[:n_k]
    n_c = w.shape[1]
    norm = _symmetric_norm(w)

    if n_c == 1:
        fig, axes = _tiles(n_k, cols, tile_size=1.15, extra_width=0.9, extra_height=0.7)
        tiles = [(ax, w[k, 0], k) for k, ax in enumerate(axes)]
        channels = [0]
    else:
        if n_c > max_channels:
            energy = np.sum(w * w, axis=(0, 2, 3))
            channels = np.sort(np.argsort(energy)[::-1][:max_channels])
        else:
            channels = np.arange(n_c)
        fig, grid = plt.subplots(n_k, len(channels), squeeze=False, layout="constrained",
                                 figsize=(1.0 * len(channels) + 1.8, 1.0 * n_k + 0.8))
        tiles = []
        for k in range(n_k):
            for j, ch in enumerate(channels):
                ax = grid[k, j]
                ax.set_xticks([])
                ax.set_yticks([])
                tiles.append((ax, w[k, ch], k if j == 0 else None))
                if k == 0:
                    ax.set_title(f"in {ch}", fontsize=8)

    image = None
    for ax, kernel, k in tiles:
        image = ax.imshow(kernel, cmap=DIVERGING, norm=norm, interpolation="nearest")
        if k is None:
            continue
        caption = f"k{k}" if p is None else f"k{k} p={p[k]:.2f}"
        if n_c == 1:
            ax.set_title(caption, fontsize=7)
        else:
            ax.set_ylabel(caption, fontsize=7, rotation=0, ha="right", va="center")
    if n_c > 1 and len(channels) < n_c:
        fig.supxlabel(f"{len(channels)} of {n_c} input channels shown: the most energetic",
                      fontsize=8)
    fig.colorbar(image, ax=[t[0] for t in tiles], shrink=0.8,
                 label="weight / max |weight| of its kernel" if normalize else "weight")
    shown = f"the first {n_k} of {n_total}" if n_k < n_total else f"{n_total}"
    fig.suptitle(title or f"{shown} kernels, {n_c} x {w.shape[2]} x {w.shape[3]} (C x kh x kw)")
    return fig


def plot_feature_maps(maps, names=None, title=None, max_maps=48, cols=8, vmax=None,
                      cmap=DIVERGING, image=None, image_name="input"):
    """Feature maps (the output channels of a layer) on one shared, zero-centred colour scale.

    Parameters
    ----------
    maps : (C, H, W) or (1, C, H, W), or a list of 2-D arrays (they may differ in size)
    names : list of str, optional
        One caption per map (default "0", "1", ...).
    title : str, optional
    max_maps : int
        Show the first max_maps maps.
    cols : int
        Tiles per row.
    vmax : float, optional
        Colour limits are -vmax..vmax; default the largest |value| shown. Pass 1.0 for SCS
        outputs, which always lie in (-1, 1), to compare figures with each other.
    cmap : str
        A diverging colour map: white must mean 0.
    image : (H, W) or (1, H, W), optional
        The input the maps came from, drawn first in grey (outside the colour scale).
    image_name : str, its caption

    Returns
    -------
    Figure with one image axis per map (plus one for ``image``), plus the colour bar's axis.
    """
    if isinstance(maps, (list, tuple)):
        maps = [np.asarray(m, dtype=np.float64) for m in maps]
    else:
        maps = np.asarray(maps, dtype=np.float64)
        if maps.ndim == 4 and maps.shape[0] == 1:
            maps = maps[0]
        if maps.ndim == 2:
            maps = maps[None]
        if maps.ndim != 3:
            raise ValueError(f"plot_feature_maps: expected maps of shape (C, H, W), got shape {maps.shape}")
        maps = list(maps)
    if any(m.ndim != 2 for m in maps):
        raise ValueError("plot_feature_maps: every map must be 2-D (H, W)")
    maps = maps[:max(1, int(max_maps))]
    norm = _symmetric_norm(np.concatenate([m.ravel() for m in maps]), vmax)
    n_extra = 0 if image is None else 1
    n_tiles = len(maps) + n_extra
    fig, axes = _tiles(n_tiles, cols, tile_size=2.0 if n_tiles <= 6 else 1.5, extra_width=1.0,
                       extra_height=0.8)
    if image is not None:
        picture = _as_image_stack(image, "plot_feature_maps")[0]
        lo, hi = _pixel_range(picture)
        axes[0].imshow(picture, cmap=DIGITS, vmin=lo, vmax=hi, interpolation="nearest")
        axes[0].set_title(image_name, fontsize=8)
    shown = None
    for i, (ax, m) in enumerate(zip(axes[n_extra:], maps, strict=True)):
        shown = ax.imshow(m, cmap=cmap, norm=norm, interpolation="nearest")
        ax.set_title(str(i) if names is None else names[i], fontsize=8)
    fig.colorbar(shown, ax=axes, shrink=0.8)
    if title:
        fig.suptitle(title)
    return fig


def plot_small_arrays(arrays, names=None, title=None, fmt="{:.2f}", vmax=None, cmap=DIVERGING,
                      cols=4, shared_scale=True, colorbars=False):
    """Small 2-D arrays side by side, every value written in its cell.

    For worked examples: a 5x5 image, a 3x3 kernel, a 4x4 feature map and its pooled 2x2
    version, a gradient routed by a pooling layer.

    Parameters
    ----------
    arrays : list of 2-D arrays (sizes may differ; keep them below ~12x12 to stay readable)
    names : list of str, optional, one caption per array
    title : str, optional
    fmt : str, a format for the values, e.g. "{:.2f}" or "{:.0f}"; None writes no values
    vmax : float, optional; colour limits -vmax..vmax (default: largest |value| of all arrays)
    cmap : str, a diverging colour map (white = 0), or a list of one colour map per array.
        An array drawn with a non-diverging map (e.g. "gray_r" for a patch of pixels, which
        is never negative) is scaled from its own minimum to its maximum.
    cols : int, arrays per row
    shared_scale : bool
        True: one colour scale for all arrays. False: each array gets its own, -m..m with
        m = its largest |value| (for arrays of very different sizes, such as a patch and a
        gradient).
    colorbars : bool, a colour bar under every array (with its own scale)

    Returns
    -------
    Figure with one image axis per array (plus one axis per colour bar).
    """
    arrays = [np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in arrays]
    cmaps = list(cmap) if isinstance(cmap, (list, tuple)) else [cmap] * len(arrays)
    if len(cmaps) != len(arrays):
        raise ValueError(f"plot_small_arrays: {len(cmaps)} colour maps for {len(arrays)} arrays")
    norm = _symmetric_norm(np.concatenate([a.ravel() for a in arrays]), vmax)
    biggest = max(max(a.shape) for a in arrays)
    size = min(4.0, max(1.8, 0.42 * biggest))
    lines = max((str(name).count("\n") + 1 for name in names), default=0) if names else 0
    if len(arrays) <= cols:
        # one row: every cell the same size, so a 3x3 window looks smaller than its 5x5 image
        cell = size / biggest
        widths = [a.shape[1] for a in arrays]
        heights = max(a.shape[0] for a in arrays)
        fig, row = plt.subplots(1, len(arrays), squeeze=False, layout="constrained",
                                gridspec_kw={"width_ratios": widths},
                                figsize=(cell * sum(widths) + 0.3 * len(arrays),
                                         cell * heights + 0.18 * lines + 0.6))
        axes = list(row[0])
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
    else:
        fig, axes = _tiles(len(arrays), cols, tile_size=size, extra_height=0.6, caption_lines=lines)
    shared_norm = norm
    for i, (ax, a) in enumerate(zip(axes, arrays, strict=True)):
        norm = shared_norm if shared_scale else _symmetric_norm(a, vmax)
        if cmaps[i] != DIVERGING:
            norm = Normalize(vmin=float(a.min()), vmax=float(a.max()) if a.max() > a.min() else a.min() + 1)
        shown = ax.imshow(a, cmap=cmaps[i], norm=norm, interpolation="nearest")
        if colorbars:
            fig.colorbar(shown, ax=ax, orientation="horizontal", shrink=0.9, pad=0.04)
        if names is not None:
            ax.set_title(names[i], fontsize=9)
        if fmt is None:
            continue
        fontsize = 9 if max(a.shape) <= 6 else 7 if max(a.shape) <= 9 else 5
        for (r, c), v in np.ndenumerate(a):
            strong = abs(norm(v) - 0.5) > 0.3          # dark cell: write in white
            ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=fontsize,
                    color="white" if strong else "black")
    if title:
        fig.suptitle(title)
    return fig


# ---------------------------------------------------------------------------------------------
# the response of SCS
def plot_response_curves(p_values=(0.5, 1, 2, 4, 8), q_values=None, cos_angle=1.0, norm_marks=None,
                         title=None):
    """How p and q shape the SCS response, as curves.

    p panel (when p_values is given): y = sign(c) * |c|**p against the cosine c in [-1, 1],
    one curve per p. p > 1 pushes moderate cosines towards 0 (only near-matches survive);
    p < 1 lifts them.

    q panel (when q_values is given): the cosine c against the patch norm |s| for a patch
    whose *direction* has cosine ``cos_angle`` with the kernel's:

        c = (s . w) / ((|s| + q) * |w|) = cos_angle * |s| / (|s| + q)

    one curve per q, |s| on a log axis. With q = 0 the curve is flat: a faint patch scores
    as high as a bold one. With q > 0, patches much weaker than q score near 0.

    Parameters
    ----------
    p_values : sequence of float, or None for no p panel
    q_values : sequence of float, or None for no q panel
    cos_angle : float in [-1, 1], for the q panel
    norm_marks : dict[str, float], optional
        Patch norms to mark on the q panel with a labelled vertical line,
        e.g. {"noise": 0.09, "pen stroke": 2.7}.
    title : str, optional

    Returns
    -------
    Figure with one axis per panel (p panel first).
    """
    if p_values is None and q_values is None:
        raise ValueError("plot_response_curves: give p_values, q_values or both")
    n_panels = (p_values is not None) + (q_values is not None)
    fig, axes = plt.subplots(1, n_panels, layout="constrained", figsize=(5.2 * n_panels, 4.2),
                             squeeze=False)
    panels = list(axes[0])
    if p_values is not None:
        ax = panels.pop(0)
        c = np.linspace(-1.0, 1.0, 801)
        colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, len(p_values)))
        for p, color in zip(p_values, colors, strict=True):
            ax.plot(c, np.sign(c) * np.abs(c) ** p, color=color, lw=2, label=f"p = {p:g}")
        ax.axhline(0, color="grey", lw=0.6)
        ax.axvline(0, color="grey", lw=0.6)
        ax.set_xlabel("cosine similarity c")
        ax.set_ylabel("y = sign(c) |c|^p")
        ax.set_title("Sharpening: what p does")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        ax.set_aspect("equal")
    if q_values is not None:
        ax = panels.pop(0)
        norms = np.logspace(-3, 1.5, 400)
        colors = plt.get_cmap("plasma")(np.linspace(0.0, 0.85, len(q_values)))
        for q, color in zip(q_values, colors, strict=True):
            ax.plot(norms, cos_angle * norms / (norms + q), color=color, lw=2, label=f"q = {q:g}")
        ax.set_xscale("log")
        ax.set_ylim(min(0.0, cos_angle) - 0.05, max(0.0, cos_angle) + 0.05)
        ax.set_xlabel("patch norm |s| (log scale)")
        ax.set_ylabel("c")
        for label, value in (norm_marks or {}).items():
            ax.axvline(value, color="grey", ls=":", lw=1.2)
            ax.text(value, 0.02, f" {label}", rotation=90, va="bottom", ha="right", fontsize=8,
                    color="dimgrey", transform=ax.get_xaxis_transform())
        ax.set_title(f"Noise floor: what q does (direction cosine {cos_angle:.2f})")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


# ---------------------------------------------------------------------------------------------
# training and evaluation
def _series(history, key, n):
    """history[key] as a float array with NaN for None, or None when absent or all None."""
    values = history.get(key)
    if values is None:
        return None
    if len(values) != n:
        raise ValueError(f"plot_training_curves: history['{key}'] has {len(values)} values, "
                         f"history['epoch'] has {n}; all lists must have the same length")
    arr = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    return None if np.all(np.isnan(arr)) else arr


def plot_training_curves(history, title=None):
    """Loss and accuracy per epoch, training and (if present) validation.

    Parameters
    ----------
    history : dict of equal-length lists
        Required: "epoch", "train_loss", "train_acc". Optional: "val_loss", "val_acc" (entries
        may be None, e.g. epochs without validation; they leave gaps), and any other keys
        ("lr", "seconds", ...), which are ignored here. Accuracies are fractions in [0, 1].
    title : str, optional

    Returns
    -------
    Figure with two axes: loss (left) and accuracy (right, in %). The last validation
    accuracy, if any, is written next to its point (the number a run reports), and the best
    one is marked with a star when it differs.
    """
    for key in ("epoch", "train_loss", "train_acc"):
        if key not in history:
            raise KeyError(f"plot_training_curves: history has no '{key}' "
                           f"(keys: {', '.join(history) or 'none'})")
    epochs = np.asarray(history["epoch"], dtype=np.float64)
    n = len(epochs)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, layout="constrained", figsize=(10, 3.8))
    style = dict(marker="o", ms=3, lw=1.6)
    for ax, what in ((ax_loss, "loss"), (ax_acc, "acc")):
        for split, color in (("train", "tab:blue"), ("val", "tab:orange")):
            values = _series(history, f"{split}_{what}", n)
            if values is not None:
                label = "training" if split == "train" else "validation"
                ax.plot(epochs, values, color=color, label=label, **style)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)   # whole epochs even for a 1-epoch run
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax_loss.set_ylabel("cross-entropy loss")
    ax_loss.set_title("Loss")
    ax_acc.set_ylabel("accuracy")
    ax_acc.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax_acc.set_title("Accuracy")
    val_acc = _series(history, "val_acc", n)
    if val_acc is not None:
        last = int(np.flatnonzero(~np.isnan(val_acc))[-1])
        best = int(np.nanargmax(val_acc))
        late = last > (n - 1) / 2                     # keep the label inside the panel
        ax_acc.annotate(f"last {val_acc[last]:.2%}", (epochs[last], val_acc[last]),
                        textcoords="offset points", xytext=(-4 if late else 4, -14),
                        ha="right" if late else "left", fontsize=8, color="tab:orange")
        if val_acc[best] > val_acc[last]:
            ax_acc.plot(epochs[best], val_acc[best], "*", ms=10, color="tab:orange",
                        label=f"best validation {val_acc[best]:.2%} (epoch {epochs[best]:g})")
            ax_acc.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def confusion_matrix(y_true, y_pred, n_classes=10):
    """Count how often each true class was predicted as each class.

    Parameters
    ----------
    y_true, y_pred : (N,) ints in [0, n_classes)
    n_classes : int

    Returns
    -------
    (n_classes, n_classes) int64 array: ``cm[t, p]`` = number of examples of true class t
    predicted as p. The diagonal holds the correct predictions; ``cm.sum() == N``.
    """
    y_true = np.asarray(y_true)
    y_true = check_labels(y_true, len(y_true), "confusion_matrix (y_true)").astype(np.int64)
    y_pred = check_labels(y_pred, len(y_true), "confusion_matrix (y_pred)").astype(np.int64)
    for name, v in (("y_true", y_true), ("y_pred", y_pred)):
        if v.size and (v.min() < 0 or v.max() >= n_classes):
            raise ValueError(f"confusion_matrix: {name} must be in [0, {n_classes - 1}], "
                             f"got values from {v.min()} to {v.max()}")
    flat = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def plot_confusion_matrix(cm, class_names=None, title=None):
    """A confusion matrix as a heat map with the count written in every cell.

    Parameters
    ----------
    cm : (n, n) ints, rows = true class, columns = predicted class (see confusion_matrix)
    class_names : list of n str, optional
    title : str, optional (default: the accuracy it implies)

    Returns
    -------
    Figure with the matrix axis and its colour bar's axis.
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"plot_confusion_matrix: expected a square (n, n) matrix, got shape {cm.shape}")
    n = cm.shape[0]
    names = [str(i) for i in range(n)] if class_names is None else list(class_names)
    fig, ax = plt.subplots(layout="constrained", figsize=(0.55 * n + 2.5, 0.55 * n + 1.8))
    image = ax.imshow(cm, cmap="Blues", interpolation="nearest")
    threshold = cm.max() / 2.0 if cm.size else 0
    for (t, p), count in np.ndenumerate(cm):
        if count:
            ax.text(p, t, str(int(count)), ha="center", va="center", fontsize=8,
                    color="white" if count > threshold else "black")
    ax.set_xticks(np.arange(n), names, rotation=45 if max(map(len, names)) > 2 else 0)
    ax.set_yticks(np.arange(n), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    total = cm.sum()
    acc = np.trace(cm) / total if total else float("nan")
    ax.set_title(title or f"Confusion matrix: {np.trace(cm):,} of {total:,} right ({acc:.2%})")
    fig.colorbar(image, ax=ax, shrink=0.8, label="examples")
    return fig


def plot_misclassified(images, y_true, y_pred, probs=None, max_n=25, cols=5, title=None):
    """The digits a model got wrong, captioned "true -> predicted".

    Parameters
    ----------
    images : (N, 28, 28) or (N, 1, 28, 28)
    y_true, y_pred : (N,) ints
    probs : (N, n_classes) floats, optional
        Predicted probabilities (softmax). When given, the most confident mistakes come first
        and each caption adds the probability given to the wrong class.
    max_n : int, show at most this many mistakes
    cols : int, tiles per row
    title : str, optional

    Returns
    -------
    Figure with one axis per mistake shown (or a single text axis when there is none).
    """
    images = _as_image_stack(images, "plot_misclassified")
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    wrong = np.flatnonzero(y_true != y_pred)
    if probs is not None:
        probs = np.asarray(probs)
        confidence = probs[wrong, y_pred[wrong]]
        wrong = wrong[np.argsort(-confidence, kind="stable")]
    if len(wrong) == 0:
        fig, ax = plt.subplots(layout="constrained", figsize=(4, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, f"No mistakes on these {len(y_true):,} examples", ha="center", va="center")
        return fig
    shown = wrong[:max(1, int(max_n))]
    vmin, vmax = _pixel_range(images[shown])
    fig, axes = _tiles(len(shown), cols, tile_size=1.35, extra_height=0.7)
    for ax, i in zip(axes, shown, strict=True):
        ax.imshow(images[i], cmap=DIGITS, vmin=vmin, vmax=vmax, interpolation="nearest")
        caption = f"{int(y_true[i])} -> {int(y_pred[i])}"
        if probs is not None:
            caption += f" ({probs[i, y_pred[i]]:.0%})"
        ax.set_title(caption, fontsize=8, color="crimson")
    fig.suptitle(title or f"{len(wrong):,} of {len(y_true):,} misclassified "
                          f"(true -> predicted){', most confident first' if probs is not None else ''}",
                 fontsize=10)
    return fig


def plot_p_histogram(p_by_layer, bins=20, title=None):
    """Histograms of the learned sharpening exponents p, one panel per layer.

    Parameters
    ----------
    p_by_layer : dict[str, (K,) floats], e.g. {"layer 0": model.layers[0].params["p"], ...}
    bins : int
    title : str, optional

    Returns
    -------
    Figure with one axis per layer, sharing the p axis. A dashed line marks p = 1 (no
    sharpening: plain cosine); the mean p is in each panel's title.
    """
    if not p_by_layer:
        raise ValueError("plot_p_histogram: p_by_layer is empty")
    arrays = {name: np.asarray(p, dtype=np.float64).reshape(-1) for name, p in p_by_layer.items()}
    everything = np.concatenate(list(arrays.values()))
    lo, hi = min(0.0, float(everything.min())), max(2.0, float(everything.max()))
    edges = np.linspace(lo, hi * 1.02, bins + 1)
    fig, axes = plt.subplots(1, len(arrays), layout="constrained", figsize=(3.4 * len(arrays) + 0.6, 3.2),
                             squeeze=False, sharex=True)
    for ax, (name, p) in zip(axes[0], arrays.items(), strict=True):
        ax.hist(p, bins=edges, color="tab:purple", edgecolor="white")
        ax.axvline(1.0, color="black", ls="--", lw=1)
        ax.set_title(f"{name}: {p.size} kernels, mean p {p.mean():.2f}", fontsize=9)
        ax.set_xlabel("p")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 0].set_ylabel("kernels")
    if title:
        fig.suptitle(title)
    return fig


# ---------------------------------------------------------------------------------------------
# watching training: kernels, p and q over the epochs
def _first_layer_tiles(w, max_kernels):
    """(K, kh, kw) tiles of the first input channel, each divided by its largest |weight|."""
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(f"expected kernels of shape (K, C, kh, kw), got shape {w.shape}")
    tiles = w[:max(1, int(max_kernels)), 0]
    peak = np.max(np.abs(tiles), axis=(1, 2), keepdims=True)
    return tiles / np.where(peak > 0, peak, 1.0)


def plot_kernels_at_epochs(snapshots, epochs=None, max_kernels=16, title=None):
    """First-layer kernels at chosen epochs: one row per epoch, one column per kernel.

    Parameters
    ----------
    snapshots : dict {epoch: w}, w of shape (K, C, kh, kw), e.g. copies of
        ``model.layers[0].params["w"]`` taken before training (epoch 0) and after epochs.
        For C > 1 the first input channel is drawn.
    epochs : list of int, optional; the rows to draw (default: every snapshot, in order)
    max_kernels : int, the first max_kernels kernels
    title : str, optional

    Every tile is scaled by its own largest |weight| (SCS ignores a kernel's length), on
    one diverging scale -1..1: red positive, blue negative, white 0.

    Returns
    -------
    Figure with one image axis per tile, plus the colour bar's axis.
    """
    epochs = sorted(snapshots) if epochs is None else list(epochs)
    missing = [e for e in epochs if e not in snapshots]
    if missing or not epochs:
        raise ValueError(f"plot_kernels_at_epochs: no snapshot for epochs {missing} "
                         f"(have {sorted(snapshots)})")
    rows = [_first_layer_tiles(snapshots[e], max_kernels) for e in epochs]
    n_k = rows[0].shape[0]
    fig, grid = plt.subplots(len(epochs), n_k, squeeze=False, layout="constrained",
                             figsize=(0.75 * n_k + 1.6, 0.8 * len(epochs) + 0.8))
    norm = Normalize(vmin=-1.0, vmax=1.0)
    image = None
    for r, (epoch, tiles) in enumerate(zip(epochs, rows, strict=True)):
        for k in range(n_k):
            ax = grid[r, k]
            ax.set_xticks([])
            ax.set_yticks([])
            image = ax.imshow(tiles[k], cmap=DIVERGING, norm=norm, interpolation="nearest")
            if r == 0:
                ax.set_title(f"k{k}", fontsize=7)
        grid[r, 0].set_ylabel(f"epoch {epoch}", fontsize=8, rotation=0, ha="right", va="center")
    fig.colorbar(image, ax=grid.ravel().tolist(), shrink=0.8, label="weight / max |weight|")
    fig.suptitle(title or "First-layer kernels during training (each on its own scale)")
    return fig


def plot_p_q(history, layer_names=None, title=None):
    """The learned exponents p and noise floors q of every SCS layer, against epochs.

    Parameters
    ----------
    history : dict with "p" and "q", one entry per recorded epoch, and optionally "epoch"
        (default 0, 1, 2, ...). history["p"][e] is a list with one entry per SCS layer (in
        model order) holding that layer's p values (one per kernel); history["q"][e] a list
        of one q per layer. ``minisc.train.train`` and lesson 6 record them this way.
    layer_names : list of str, optional, one per SCS layer (default "SCS layer 1", ...)
    title : str, optional

    Returns
    -------
    Figure with two axes: p (left; per layer the mean as a line and the range from the
    smallest to the largest p as a band) and q (right, log scale).
    """
    if "p" not in history or "q" not in history or not history["p"]:
        raise KeyError("plot_p_q: history needs 'p' and 'q' lists (one entry per epoch)")
    n = len(history["p"])
    if len(history["q"]) != n:
        raise ValueError(f"plot_p_q: {len(history['p'])} p entries but {len(history['q'])} q entries")
    epochs = np.asarray(history.get("epoch", range(n)), dtype=np.float64)
    if len(epochs) != n:
        raise ValueError(f"plot_p_q: {len(epochs)} epochs for {n} p entries")
    n_layers = len(history["p"][0])
    names = layer_names or [f"SCS layer {i + 1}" for i in range(n_layers)]
    fig, (ax_p, ax_q) = plt.subplots(1, 2, layout="constrained", figsize=(10, 3.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i in range(n_layers):
        p = [np.asarray(history["p"][e][i], dtype=np.float64) for e in range(n)]
        color = colors[i % len(colors)]
        ax_p.plot(epochs, [v.mean() for v in p], marker="o", ms=3, color=color, label=f"{names[i]} (mean)")
        ax_p.fill_between(epochs, [v.min() for v in p], [v.max() for v in p], color=color, alpha=0.15)
        q = [float(np.ravel(history["q"][e][i])[0]) for e in range(n)]
        ax_q.plot(epochs, q, marker="o", ms=3, color=color, label=names[i])
    ax_p.set_ylabel("p (band: smallest to largest kernel)")
    ax_p.set_title("Sharpening exponents p")
    ax_q.set_ylabel("q")
    ax_q.set_yscale("log")
    ax_q.set_title("Noise floors q (log scale)")
    for ax in (ax_p, ax_q):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def animate_kernels(snapshots, path, max_kernels=16, fps=2, cols=8):
    """Save an animated GIF of the first-layer kernels over training, one frame per snapshot.

    Parameters
    ----------
    snapshots : dict {epoch: w (K, C, kh, kw)}, as for plot_kernels_at_epochs
    path : where to write the GIF (Pillow, which comes with Matplotlib, writes it)
    max_kernels, cols : the first max_kernels kernels, in a grid cols wide
    fps : frames per second

    Every kernel is scaled by its own largest |weight| in every frame. Returns the path.
    """
    from matplotlib.animation import FuncAnimation, PillowWriter

    epochs = sorted(snapshots)
    if not epochs:
        raise ValueError("animate_kernels: no snapshots")
    frames = [_first_layer_tiles(snapshots[e], max_kernels) for e in epochs]
    fig, axes = _tiles(frames[0].shape[0], cols, tile_size=0.9, extra_height=0.5)
    images = [ax.imshow(tile, cmap=DIVERGING, vmin=-1, vmax=1, interpolation="nearest")
              for ax, tile in zip(axes, frames[0], strict=True)]
    heading = fig.suptitle(f"first-layer kernels, epoch {epochs[0]}")

    def draw(i):
        for image, tile in zip(images, frames[i], strict=True):
            image.set_data(tile)
        heading.set_text(f"first-layer kernels, epoch {epochs[i]}")
        return images

    animation = FuncAnimation(fig, draw, frames=len(frames), interval=1000 / fps)
    animation.save(str(path), writer=PillowWriter(fps=fps))
    plt.close(fig)
    return path
