"""Losses. A loss takes the network's output and the targets, returns one number, and its
backward() returns dL/d(output) to start backpropagation."""

import numpy as np


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels.

    forward(logits (N, classes), labels (N,) ints, teacher_probs=None) -> float, the mean loss
    backward() -> dL/dlogits (N, classes) = (softmax(logits) - target) / N

    The target is onehot(labels), or with label_smoothing = eps > 0 the smoothed
    (1 - eps) * onehot(labels) + eps / classes: the true class gets 1 - eps + eps / classes and
    every other class eps / classes, so the network is never asked for a probability of exactly
    1 and stops pushing its logits apart once they are far enough (Szegedy et al., "Rethinking
    the Inception Architecture", 2016). The loss is then -mean_n sum_k target_nk log p_nk.

    Knowledge distillation (Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural
    Network", 2015): with distill_weight = a > 0, forward also takes teacher_probs, (N, classes),
    another network's class probabilities for the same images, and the target becomes

        (1 - a) * (the target above) + a * teacher_probs

    so the network learns which wrong classes an image resembles, not only its label. Label
    smoothing is the special case of a teacher that finds every class equally likely. (Hinton et
    al. also soften the student's own softmax by the temperature and scale the loss by T^2;
    here only the teacher's probabilities are softened, by whoever computes them, so the
    gradient keeps its form (p - t) / N.)

    Numerically stable: log softmax is computed as z - max(z) - log(sum(exp(z - max(z)))), so
    large logits never overflow exp.
    """

    def __init__(self, label_smoothing=0.0, distill_weight=0.0):
        def number(v):                  # (NaN is refused by the comparisons below)
            return isinstance(v, (int, float, np.floating)) and not isinstance(v, bool)
        if not (number(label_smoothing) and 0.0 <= label_smoothing < 1.0):
            raise ValueError(f"SoftmaxCrossEntropy: label_smoothing must be a number from 0 up to "
                             f"(not including) 1, got {label_smoothing!r}")
        if not (number(distill_weight) and 0.0 <= distill_weight <= 1.0):
            raise ValueError(f"SoftmaxCrossEntropy: distill_weight must be a number from 0 up to 1, "
                             f"got {distill_weight!r}")
        self.label_smoothing = float(label_smoothing)
        self.distill_weight = float(distill_weight)

    def _target(self, labels, n_classes, dtype):
        """(N, classes): onehot(labels), smoothed towards the uniform distribution by eps, then
        mixed with the teacher's probabilities (if any) by distill_weight."""
        eps = self.label_smoothing
        target = np.full((len(labels), n_classes), eps / n_classes, dtype=dtype)
        target[np.arange(len(labels)), labels] += 1.0 - eps
        if self._teacher_probs is not None:
            a = self.distill_weight
            target = (1.0 - a) * target + a * self._teacher_probs.astype(dtype, copy=False)
        return target

    def _check_teacher(self, teacher_probs, shape):
        """teacher_probs as an array of the logits' shape, or an error saying what is wrong."""
        if self.distill_weight == 0.0:
            if teacher_probs is not None:
                raise ValueError("SoftmaxCrossEntropy: teacher_probs given, but distill_weight is 0, "
                                 "so they would be ignored; create the loss with distill_weight > 0")
            return None
        if teacher_probs is None:
            raise ValueError(f"SoftmaxCrossEntropy: distill_weight is {self.distill_weight}, so "
                             "forward() needs teacher_probs, the teacher's class probabilities "
                             f"of shape {shape}")
        teacher_probs = np.asarray(teacher_probs)
        if teacher_probs.shape != shape:
            raise ValueError(f"SoftmaxCrossEntropy: expected teacher_probs of the logits' shape "
                             f"{shape}, got {teacher_probs.shape}")
        return teacher_probs

    def forward(self, logits, labels, teacher_probs=None):
        if not isinstance(logits, np.ndarray) or logits.ndim != 2:
            got = getattr(logits, "shape", type(logits).__name__)
            raise ValueError(f"SoftmaxCrossEntropy: expected logits of shape (N, classes), got {got}")
        labels = check_labels(labels, logits.shape[0], "SoftmaxCrossEntropy")
        n_classes = logits.shape[1]
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError(f"SoftmaxCrossEntropy: labels must be in [0, {n_classes - 1}], got "
                             f"values from {labels.min()} to {labels.max()}")
        teacher_probs = self._check_teacher(teacher_probs, logits.shape)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        log_probs = shifted - log_sum                                   # (N, classes)
        self._probs = np.exp(log_probs)
        self._labels = labels
        self._teacher_probs = teacher_probs
        if self.label_smoothing == 0.0 and teacher_probs is None:      # onehot: pick one entry per row
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


def softmax(logits, temperature=1.0):
    """Row-wise softmax(logits / temperature), computed without overflow: (N, classes) -> same."""
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


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
