"""Layer data: base figures plus patches must give exactly the figures the viz functions draw."""
from __future__ import annotations

import json

import numpy as np
import pytest

from server.controls import Controls
from server.layer_data import PANELS, apply_patch, differences, layer_data, plain, typed_array
from server.state import make_view
from viz.common import raw_figures


@pytest.fixture(scope="module")
def view(lm, trace):
    return make_view(lm, trace)


def resolve(obj, arrays):
    if isinstance(obj, dict):
        if set(obj) == {"$a"}:
            return arrays[obj["$a"]]
        return {k: resolve(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [resolve(v, arrays) for v in obj]
    return obj


def canonical(fig) -> str:
    return json.dumps(fig, sort_keys=True, allow_nan=False)


@pytest.mark.parametrize("controls", [Controls(layer=3, head=2), Controls(layer=0, head=8, exclude_first=True, log_scale=True,
                                                                           mlp_all=True)])
def test_every_patch_gives_the_figure_the_server_would_draw(view, controls):
    data = json.loads(json.dumps(layer_data(view, controls, budget=10**9)))      # as the page receives it
    assert data["layers"] == list(range(view.trace.config.n_layer))
    for pid, (by, fn) in PANELS.items():
        panel = data["panels"][pid]
        assert panel["by"] == by
        for layer, head in [(controls.layer, controls.head), (29, 4), (1, 0), (controls.layer, 7)]:
            key = str(layer) if by == "layer" else f"{layer}.{head}"
            base_key = str(controls.layer) if by == "layer" else f"{controls.layer}.{controls.head}"
            got = panel["base"] if key == base_key else resolve(apply_patch(panel["base"], panel["patches"][key]),
                                                                 data["arrays"])
            with raw_figures():
                want = plain(fn(view, controls, layer, head if by == "layer-head" else controls.head))
            assert canonical(got) == canonical(want), (pid, layer, head)


def test_a_small_budget_sends_the_nearest_layers_first(view):
    data = layer_data(view, Controls(layer=10, head=1), budget=0)
    assert data["layers"] == [10]
    more = layer_data(view, Controls(layer=10, head=1), budget=300_000)
    assert 1 < len(more["layers"]) < 30
    assert more["layers"] == list(range(min(more["layers"]), max(more["layers"]) + 1))   # around layer 10
    assert abs(10 - min(more["layers"]) - (max(more["layers"]) - 10)) <= 1
    asked = layer_data(view, Controls(layer=10, head=1), budget=10**9, layers=[3, 4])
    assert asked["layers"] == [3, 4, 10] and asked["version"] == data["version"]
    other = layer_data(view, Controls(layer=10, head=1, mlp_all=True), budget=0)
    assert other["version"] != data["version"]          # other figures: the page must not mix them


def test_equal_arrays_are_sent_once(view):
    data = layer_data(view, Controls(layer=3, head=0), budget=10**9)
    specs = [json.dumps(a, sort_keys=True) for a in data["arrays"]]
    assert len(specs) == len(set(specs))
    # heads sharing a K/V head share their K and V heatmaps in the step-by-step panel
    detail = data["panels"]["attention-detail"]["patches"]
    refs = lambda key: [v for k, v in detail[key].items() if k.startswith("data.4.z")]
    assert refs("5.3") == refs("5.4") == refs("5.5") != refs("5.6")


def test_differences_and_patches_are_inverse():
    a = {"data": [{"z": np.arange(4.0), "name": "x"}], "layout": {"title": {"text": "L0"}, "shapes": []}}
    b = {"data": [{"z": np.arange(4.0) + 1, "name": "x"}], "layout": {"title": {"text": "L1"}, "shapes": [{"x0": 1}]}}
    d = differences(a, b)
    assert set(d) == {"data.0.z", "layout.title.text", "layout.shapes"}
    assert differences(a, a) == {}
    assert canonical(plain(apply_patch(a, d))) == canonical(plain(b))


def test_typed_arrays_round_trip():
    import base64
    for a in (np.array([[1.5, np.nan]], dtype=np.float16), np.array([1, -2], dtype=np.int64), np.array([True, False])):
        spec = typed_array(a)
        back = np.frombuffer(base64.b64decode(spec["bdata"]), dtype="<" + spec["dtype"])
        np.testing.assert_array_equal(back.reshape(a.shape), a.astype(back.dtype))
