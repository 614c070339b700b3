"""Losses. A loss takes the network's output and the targets, returns one number, and its
backward() returns dL/d(output) to start backpropagation."""

import numpy as np


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels.

    forward(logits (N, classes), labels (N,) ints) -> float, the mean loss
    backward() -> dL/dlogits (N, classes) = (softmax(logits) - target) / N

    The target is onehot(labels), or with label_smoothing = eps > 0 the smoothed
    (1 - eps) * onehot(labels) + eps / classes: the true class gets 1 - eps + eps / classes and
    every other class eps / classes, so the network is never asked for a probability of exactly
    1 and stops pushing its logits apart once they are far enough (Szegedy et al., "Rethinking
    the Inception Architecture", 2016). The loss is then -mean_n sum_k target_nk log p_nk.

    Numerically stable: log softmax is computed as z - max(z) - log(sum(exp(z - max(z)))), so
    large logits never overflow exp.
    """

    def __init__(self, label_smoothing=0.0):
        eps = label_smoothing
        if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)) \
                or not 0.0 <= eps < 1.0:
            raise ValueError(f"SoftmaxCrossEntropy: label_smoothing must be a number from 0 up to "
                             f"(not including) 1, got {label_smoothing!r}")
        self.label_smoothing = float(eps)

    def _target(self, labels, n_classes, dtype):
        """(N, classes): onehot(labels), smoothed towards the uniform distribution by eps."""
        eps = self.label_smoothing
        target = np.full((len(labels), n_classes), eps / n_classes, dtype=dtype)
        target[np.arange(len(labels)), labels] += 1.0 - eps
        return target

    def forward(self, logits, labels):
        if not isinstance(logits, np.ndarray) or logits.ndim != 2:
            got = getattr(logits, "shape", type(logits).__name__)
            raise ValueError(f"SoftmaxCrossEntropy: expected logits of shape (N, classes), got {got}")
        labels = check_labels(labels, logits.shape[0], "SoftmaxCrossEntropy")
        n_classes = logits.shape[1]
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError(f"SoftmaxCrossEntropy: labels must be in [0, {n_classes - 1}], got "
                             f"values from {labels.min()} to {labels.max()}")
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        log_probs = shifted - log_sum                                   # (N, classes)
        self._probs = np.exp(log_probs)
        self._labels = labels
        if self.label_smoothing == 0.0:                                 # onehot: pick one entry per row
            return float(-log_probs[np.arange(len(labels)), labels].mean())
        target = self._target(labels, n_classes, log_probs.dtype)
        return float(-(target * log_probs).sum(axis=1).mean())

    __call__ = forward

    def backward(self):
        if not hasattr(self, "_probs"):
            raise RuntimeError("SoftmaxCrossEntropy: backward() called before forward(); call "
                               "loss.forward(logits, labels) first, then loss.backward()")
        # L = -mean_n sum_k t_nk log softmax(z_n)_k, and sum_k t_nk = 1
        #   ->  dL/dz_n = (softmax(z_n) - t_n) / N
        grad = self._probs - self._target(self._labels, self._probs.shape[1], self._probs.dtype)
        grad /= len(self._labels)
        return grad


def check_labels(labels, n, who):
    """``labels`` as an integer array of shape (n,), or an error saying what is wrong.

    Float labels are refused (int(3.7) would quietly become class 3), and so is a column of
    labels, (n, 1), which NumPy would broadcast against (n,) into an (n, n) comparison.
    """
    labels = np.asarray(labels)
    if labels.shape != (n,):
        hint = " (a column of labels? use labels.ravel())" if labels.shape == (n, 1) else ""
        raise ValueError(f"{who}: expected {n} labels of shape (N,) = ({n},), got shape "
                         f"{labels.shape}{hint}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{who}: labels must be integers (class indices 0, 1, 2, ...), got dtype "
                        f"{labels.dtype}; if they are whole numbers, convert them with "
                        "labels.astype(np.int64)")
    return labels


def accuracy(logits, labels):
    """Fraction of rows whose largest logit is at the label's index.

    logits: (N, classes); labels: (N,) class indices. Anything else is an error, never a
    quietly wrong number.
    """
    logits = np.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"accuracy: expected logits of shape (N, classes), got shape {logits.shape}")
    labels = check_labels(labels, logits.shape[0], "accuracy")
    return float(np.mean(np.argmax(logits, axis=1) == labels))
