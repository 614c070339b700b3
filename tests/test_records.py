"""The parameter-efficiency record models and the parts of their recipes: quick checks only
(the record runs themselves are benchmarks/records.py)."""

import math
from pathlib import Path

import numpy as np
import pytest

import minisc
from minisc import Conv2D, MaxAbsPool2D, MaxPool2D, SharpCosSim2D, gradcheck
from minisc.models import FASHION_1890_WIDTHS, MODELS, RECIPES, _record_stack, build_model
from minisc.train import one_cycle_at, random_flip, train

RECORDS = {"fashion-2764": 2764, "fashion-1890": 1890, "mnist-1398": 1398}


def test_the_published_network_has_exactly_2764_parameters():
    model = build_model("fashion-2764", rng=0)
    assert model.n_params == 2764
    per_layer = [layer.n_params for layer in model.layers if layer.n_params]
    assert per_layer == [322, 322, 662, 202, 422, 202, 422, 210]   # as counted in the original
    shapes = model.output_shapes()
    assert [s[1] for s in shapes if len(s) == 3] == [26, 13, 13, 13, 7, 7, 7, 4, 4, 4, 1]


def test_fashion_1890_looks_at_full_resolution_with_its_first_depthwise_layer():
    """The first pool sits between the first depthwise and pointwise layers: that depthwise layer
    sees the 26x26 maps. Moving a pool moves no parameter: the count is that of the plain shape."""
    model = build_model("fashion-1890", rng=0)
    assert model.n_params == 1856
    per_layer = [layer.n_params for layer in model.layers if layer.n_params]
    assert per_layer == [222, 222, 370, 162, 274, 162, 274, 170]
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds[:4] == ["SharpCosSim2D", "SharpCosSim2D", "MaxAbsPool2D", "SharpCosSim2D"]
    assert model.layers[1].groups == 22 and model.layers[3].kernel_size == (1, 1)
    shapes = model.output_shapes()
    assert [s[1] for s in shapes if len(s) == 3] == [26, 26, 13, 13, 7, 7, 7, 4, 4, 4, 1]
    plain = _record_stack(FASHION_1890_WIDTHS, published=True, rng=0)
    assert plain.n_params == model.n_params
    assert [s[1] for s in plain.output_shapes() if len(s) == 3][:4] == [26, 13, 13, 13]


@pytest.mark.parametrize("name,budget", RECORDS.items())
def test_record_models_fit_their_budgets_and_recipes(name, budget):
    model = build_model(name, rng=0)
    assert model.n_params <= budget
    recipe = RECIPES[name]
    assert recipe["data"] == ("mnist" if name.startswith("mnist") else "fashion-mnist")
    if name.startswith("mnist"):
        assert not recipe["flip"]                                 # never flip digits
    elif not isinstance(recipe["flip"], bool):                    # some classes only: never shoes
        assert set(recipe["flip"]) <= set(range(10)) - {5, 7, 9}
    assert recipe["schedule"] == "one-cycle"
    if "teacher" in recipe:                       # distilled: the teacher is named, not counted
        assert set(recipe["teacher"]) == {"model", "epochs", "lr"} and recipe["teacher"]["model"] in MODELS
        assert 0 < recipe["distill_weight"] <= 1 and recipe["distill_temperature"] > 0
    assert not {"teacher", "distill_weight", "distill_temperature",
                "distill_soften_student"} & set(RECIPES[name + "-convnet"])


@pytest.mark.parametrize("name", RECORDS)
def test_convnet_twins_have_the_same_shape(name):
    scs, twin = build_model(name, rng=0), build_model(name + "-convnet", rng=0)
    scs_layers = [layer for layer in scs.layers if isinstance(layer, (SharpCosSim2D, MaxAbsPool2D))]
    twin_layers = [layer for layer in twin.layers if isinstance(layer, (Conv2D, MaxPool2D))]
    assert len(scs_layers) == len(twin_layers)
    for a, b in zip(scs_layers, twin_layers):
        if isinstance(a, SharpCosSim2D):
            assert (a.in_channels, a.out_channels, a.kernel_size, a.groups, a.padding) == \
                (b.in_channels, b.out_channels, b.kernel_size, b.groups, b.padding)
        else:
            assert (a.pool_size, a.ceil_mode) == (b.pool_size, b.ceil_mode)
    assert scs.output_shapes()[-1] == twin.output_shapes()[-1] == (10,)
    assert RECIPES[name + "-convnet"]["epochs"] == RECIPES[name]["epochs"]


@pytest.mark.parametrize("name", sorted(n for n in MODELS if n.split("-")[0] in ("fashion", "mnist")))
def test_two_training_steps_of_every_record_model(name):
    rng = np.random.default_rng(0)
    x = rng.random((20, 1, 28, 28)).astype(np.float32)
    x[x < 0.6] = 0.0                                              # MNIST-like blank background
    y = np.arange(20) % 10
    model = build_model(name, rng=0)
    before = [v.copy() for layer in model.layers for v in layer.params.values()]
    recipe = {k: v for k, v in RECIPES[name].items() if k not in ("data", "epochs")}
    recipe["batch_size"] = 10
    history = train(model, x, y, epochs=1, progress=False, log=lambda *a: None, **recipe)
    after = [v for layer in model.layers for v in layer.params.values()]
    assert all(np.isfinite(v).all() for v in after)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    assert math.isfinite(history["train_loss"][0])
    n_scs = sum(isinstance(layer, SharpCosSim2D) for layer in model.layers)
    assert len(history["p"][0]) == len(history["q"][0]) == n_scs


def test_a_depthwise_pointwise_block_passes_a_gradient_check():
    """The record networks' building block, end to end: SCS, ceil-mode pool, depthwise, pointwise."""
    from minisc import Flatten, Sequential
    kw = dict(alpha_init=10.0, q_init=0.37, dtype=np.float64, rng=0)
    block = Sequential([SharpCosSim2D(1, 4, 3, **kw), MaxAbsPool2D(2, ceil_mode=True, dtype=np.float64),
                        SharpCosSim2D(4, 4, 3, padding=1, groups=4, **kw), SharpCosSim2D(4, 3, 1, **kw),
                        MaxAbsPool2D(4, ceil_mode=True, dtype=np.float64), Flatten(dtype=np.float64)])
    x = np.random.default_rng(1).random((2, 1, 9, 9))
    for name, err in gradcheck(block, x, max_checks=20).items():
        assert err < 1e-5, f"{name}: relative error {err:.2e}"


def test_one_cycle_matches_pytorchs_defaults():
    total, top = 1000, 0.03
    lrs, betas = zip(*(one_cycle_at(step, total, top) for step in range(total)))
    peak = int(np.argmax(lrs))
    assert peak == round(0.3 * total) - 1                         # the end of the warm-up phase
    assert lrs[0] == pytest.approx(top / 25)
    assert lrs[peak] == pytest.approx(top)
    assert lrs[-1] == pytest.approx(top / 25 / 1e4)
    assert betas[0] == pytest.approx(0.95) and betas[peak] == pytest.approx(0.85)
    assert betas[-1] == pytest.approx(0.95)
    assert all(a <= b for a, b in zip(lrs[:peak], lrs[1:peak + 1]))   # up, then down
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:]))


def test_random_flip_mirrors_about_half_the_images():
    x = np.random.default_rng(0).random((400, 1, 5, 5))
    original = x.copy()
    out = random_flip(x, np.random.default_rng(1))
    np.testing.assert_array_equal(x, original)                    # the input is left alone
    mirrored = np.all(out == x[:, :, :, ::-1], axis=(1, 2, 3))
    kept = np.all(out == x, axis=(1, 2, 3))
    assert np.all(mirrored ^ kept)
    assert 150 < mirrored.sum() < 250


def test_random_flip_can_spare_some_classes():
    x = np.random.default_rng(0).random((400, 1, 5, 5))
    labels = np.arange(400) % 4
    out = random_flip(x, np.random.default_rng(1), labels, classes=[1, 3])
    mirrored = np.all(out == x[:, :, :, ::-1], axis=(1, 2, 3))
    kept = np.all(out == x, axis=(1, 2, 3))
    assert np.all(mirrored ^ kept)
    assert not mirrored[np.isin(labels, [0, 2])].any()              # never the spared classes
    assert 70 < mirrored[np.isin(labels, [1, 3])].sum() < 130       # about half of the others


SHIPPED = sorted((Path(__file__).resolve().parents[1] / "lessons" / "models").glob("*.npz"))


def test_the_record_models_are_shipped():
    assert [path.stem for path in SHIPPED] == sorted(RECORDS)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.name)
def test_a_shipped_model_is_the_network_its_builder_makes(path):
    """Lesson 11 opens these files as the record networks of minisc.models: a file left behind
    when a design changes is caught here."""
    trained = minisc.load(path)
    meta = trained.metadata
    assert meta["model"] == path.stem and meta["held_out"] == "test" and meta["quick"] is False
    built = build_model(path.stem)
    assert [(type(a), a.config()) for a in trained.layers] == [(type(b), b.config()) for b in built.layers]
    assert trained.n_params == built.n_params <= RECORDS[path.stem]
    assert meta["epochs_done"] == RECIPES[path.stem]["epochs"]
    assert 0.5 < meta["final_accuracy"] <= 1
    assert meta["command"].startswith(f"python benchmarks/records.py {path.stem} --seed {meta['seed']}")
