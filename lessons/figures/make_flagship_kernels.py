"""Make lessons/figures/flagship_kernels.png, the kernel figure of the main README.

The first-layer kernels of the flagship SCS network (``build_model("scs")``) after training
on the embedded MNIST sample with the default recipe (``minisc.train.DEFAULTS["scs"]``: 30
epochs, Adam lr 0.01, batch 64, random shifts of up to 2 pixels, seed 0), drawn with
``minisc.viz.plot_kernels`` at its default per-kernel scaling, each tile captioned with the
kernel's learned p.

    python lessons/figures/make_flagship_kernels.py                      # trains first
    python lessons/figures/make_flagship_kernels.py --model runs/scs/model.npz

Training takes about as long as lesson 6 on the sample (see lessons/what_to_expect.md).
With ``--model``, any saved flagship model is drawn instead (for example one trained by
``python -m minisc.train --data sample --model scs --epochs 30 --seed 0 --out runs/scs``,
which is the same recipe).
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import minisc  # noqa: E402
from minisc import viz  # noqa: E402
from minisc.models import build_model  # noqa: E402
from minisc.train import DEFAULTS, load_dataset, train  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a saved flagship model to draw instead of training one")
    parser.add_argument("--out", default=str(ROOT / "lessons" / "figures" / "flagship_kernels.png"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.model:
        model = minisc.load(args.model)
        source = f"loaded from {args.model}"
    else:
        data = load_dataset("sample")
        model = build_model("scs", rng=args.seed)
        settings = DEFAULTS["scs"]
        history = train(model, data["x_train"], data["y_train"], data["x_test"], data["y_test"],
                        seed=args.seed, **settings)
        source = (f"trained {settings['epochs']} epochs on 4,500 sample digits, "
                  f"validation accuracy {history['val_acc'][-1]:.2%}")
    first = model.layers[0]
    fig = viz.plot_kernels(first.params["w"], p=first.params["p"],
                           title="First-layer kernels of the flagship SCS network "
                                 "(each on its own scale; red +, blue -)")
    fig.savefig(args.out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"{source}\nsaved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
