"""Reference solution to exercise 1: cosine similarity, then sharpened cosine similarity."""

import numpy as np

EPS = 1e-12  # inside every square root


def cosine_similarity(a, b):
    """cos = (a . b) / (sqrt(a . a + eps) * sqrt(b . b + eps)); a, b: same shape -> float."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    dot = np.sum(a * b)
    return float(dot / (np.sqrt(np.sum(a * a) + EPS) * np.sqrt(np.sum(b * b) + EPS)))


def scs_score(patch, kernel, p, q):
    """y = sign(c) |c|**p, c = (s . w) / ((sqrt(s . s + eps) + q) sqrt(w . w + eps)) -> float."""
    s = np.asarray(patch, dtype=np.float64)
    w = np.asarray(kernel, dtype=np.float64)
    norm_s = np.sqrt(np.sum(s * s) + EPS) + q      # q: noise floor, on the patch norm only
    norm_w = np.sqrt(np.sum(w * w) + EPS)
    c = np.sum(s * w) / (norm_s * norm_w)
    return float(np.sign(c) * np.abs(c) ** p)      # sharpen the size, keep the sign


if __name__ == "__main__":
    stroke = np.array([[0.0, 1.0, 0.0],
                       [0.0, 1.0, 0.0],
                       [0.0, 1.0, 0.0]])
    print("cosine(stroke, stroke.T) =", cosine_similarity(stroke, stroke.T))
    print("scs(stroke, stroke.T, p=2, q=0.1) =", scs_score(stroke, stroke.T, 2.0, 0.1))
