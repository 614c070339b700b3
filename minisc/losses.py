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
    smoothing is the special case of a teacher that finds every class equally likely. The
    teacher's probabilities come softened by a temperature T, softmax(teacher logits / T), from
    whoever computes them (minisc.train's TeacherTargets), and the gradient keeps its form
    (p - t) / N.

    Hinton et al. soften the student's side too: with student_temperature = T > 0 (not 1), the
    two parts of the target get a softmax each,

        L = -mean_n [ (1 - a) sum_k t_nk log p_nk  +  a T^2 sum_k tau_nk log r_nk ]
        p = softmax(z),  r = softmax(z / T),  t: the label's target,  tau: teacher_probs

    so the student matches the teacher's softened probabilities with its own softened ones and
    may keep its plain ones sharp for the label. d/dz of -sum_k tau_k log r_k is (r - tau) / T,
    and at high T, r - tau itself shrinks like 1 / T; hence Hinton et al.'s factor T^2, which
    keeps the soft part's share of the gradient about the same whatever T is:

        dL/dz_n = [ (1 - a) (p_n - t_n)  +  a T (r_n - tau_n) ] / N.

    At T = 1 this is the mixed target above, which is what the loss computes then.

    Numerically stable: log softmax is computed as z - max(z) - log(sum(exp(z - max(z)))), so
    large logits never overflow exp.
    """

    def __init__(self, label_smoothing=0.0, distill_weight=0.0, student_temperature=1.0):
        def number(v):                  # (NaN is refused by the comparisons below)
            return isinstance(v, (int, float, np.floating)) and not isinstance(v, bool)
        if not (number(label_smoothing) and 0.0 <= label_smoothing < 1.0):
            raise ValueError(f"SoftmaxCrossEntropy: label_smoothing must be a number from 0 up to "
                             f"(not including) 1, got {label_smoothing!r}")
        if not (number(distill_weight) and 0.0 <= distill_weight <= 1.0):
            raise ValueError(f"SoftmaxCrossEntropy: distill_weight must be a number from 0 up to 1, "
                             f"got {distill_weight!r}")
        if not (number(student_temperature) and 0.0 < student_temperature < np.inf):
            raise ValueError(f"SoftmaxCrossEntropy: student_temperature must be a number > 0, got "
                             f"{student_temperature!r}")
        self.label_smoothing = float(label_smoothing)
        self.distill_weight = float(distill_weight)
        self.student_temperature = float(student_temperature)

    def _softened(self):
        """True when the teacher's part has a softmax of its own (student_temperature != 1)."""
        return self._teacher_probs is not None and self.student_temperature != 1.0

    def _target(self, labels, n_classes, dtype):
        """(N, classes): onehot(labels), smoothed towards the uniform distribution by eps, then
        mixed with the teacher's probabilities (if any, and not softened apart) by distill_weight."""
        eps = self.label_smoothing
        target = np.full((len(labels), n_classes), eps / n_classes, dtype=dtype)
        target[np.arange(len(labels)), labels] += 1.0 - eps
        if self._teacher_probs is not None and not self._softened():
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
        log_probs = _log_softmax(logits)                                # (N, classes)
        self._probs = np.exp(log_probs)
        self._labels = labels
        self._teacher_probs = teacher_probs
        if self.label_smoothing == 0.0 and teacher_probs is None:      # onehot: pick one entry per row
            return float(-log_probs[np.arange(len(labels)), labels].mean())
        target = self._target(labels, n_classes, log_probs.dtype)
        if not self._softened():
            return float(-(target * log_probs).sum(axis=1).mean())
        # Hinton et al.'s form: the teacher's part against the student's softened softmax
        a, T = self.distill_weight, self.student_temperature
        log_soft = _log_softmax(logits / T)                             # log r, (N, classes)
        self._soft_probs = np.exp(log_soft)
        self._teacher_probs = teacher_probs.astype(log_soft.dtype, copy=False)      # tau
        hard = -(target * log_probs).sum(axis=1)                        # (N,)
        soft = -(self._teacher_probs * log_soft).sum(axis=1)            # (N,)
        return float(((1.0 - a) * hard + a * T * T * soft).mean())

    __call__ = forward

    def backward(self):
        if not hasattr(self, "_probs"):
            raise RuntimeError("SoftmaxCrossEntropy: backward() called before forward(); call "
                               "loss.forward(logits, labels) first, then loss.backward()")
        # L = -mean_n sum_k t_nk log softmax(z_n)_k, and sum_k t_nk = 1
        #   ->  dL/dz_n = (softmax(z_n) - t_n) / N
        grad = self._probs - self._target(self._labels, self._probs.shape[1], self._probs.dtype)
        if self._softened():
            # L = (1 - a) CE(t, softmax(z)) + a T^2 CE(tau, softmax(z / T))
            #   ->  dL/dz_n = ((1 - a) (p_n - t_n) + a T (r_n - tau_n)) / N
            a, T = self.distill_weight, self.student_temperature
            grad *= 1.0 - a
            grad += (a * T) * (self._soft_probs - self._teacher_probs)
        grad /= len(self._labels)
        return grad


def _log_softmax(z):
    """Row-wise log softmax(z) = z - max(z) - log(sum(exp(z - max(z)))): no exp ever overflows."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


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
