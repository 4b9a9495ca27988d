"""The TF.js graph-model reader: weights decoded as tfjs decodes them, and clear errors for broken files."""

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cluster.vision.faceres import MODEL_DIR, compile_layers, load_faceres_graph
from cluster.vision.tfjs_graph import TensorShape, TfjsModelError, load_graph_model


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _write_model(folder: Path, groups: list[dict], shards: dict[str, bytes], nodes: list[dict]) -> Path:
    for name, data in shards.items():
        (folder / name).write_bytes(data)
    path = folder / "model.json"
    document = {"format": "graph-model", "modelTopology": {"node": nodes}, "weightsManifest": groups}
    path.write_text(json.dumps(document))
    return path


def _spec(name: str, shape: list[int], dtype: str, quantization: dict | None = None) -> dict:
    spec = {"name": name, "shape": shape, "dtype": dtype}
    return spec if quantization is None else {**spec, "quantization": quantization}


def _const(name: str) -> dict:
    return {"name": name, "op": "Const", "attr": {"value": {"tensor": {"dtype": "DT_FLOAT"}}}}


@pytest.fixture
def small_model(tmp_path: Path) -> Path:
    """Every storage kind the reader decodes, in two groups, the first split over two shards mid-weight."""
    f16 = np.array([[0.5, -2.0, 1e-3], [65504.0, 0.0, -0.25]], dtype="<f2")
    u8 = np.array([0, 1, 2, 255], dtype="u1")
    u16 = np.array([0, 40000, 65535], dtype="<u2")
    u8_int = np.array([0, 3, 5], dtype="u1")
    f32 = np.array([1.5, -3.25, 7.0], dtype="<f4")
    i32 = np.array([1, 2], dtype="<i4")
    flags = np.array([1, 0, 1], dtype="u1")
    first = f16.tobytes() + u8.tobytes() + u16.tobytes()
    second = u8_int.tobytes() + f32.tobytes() + i32.tobytes() + flags.tobytes()
    groups = [
        {
            "paths": ["group1-shard1of2.bin", "group1-shard2of2.bin"],
            "weights": [
                _spec("f16", [2, 3], "float32", {"dtype": "float16"}),
                _spec("u8", [4], "float32", {"dtype": "uint8", "scale": 0.5, "min": -1.0}),
                _spec("u16", [3], "float32", {"dtype": "uint16", "scale": 1e-4, "min": 2.0}),
            ],
        },
        {
            "paths": ["group2-shard1of1.bin"],
            "weights": [
                _spec("u8_int", [3], "int32", {"dtype": "uint8", "scale": 0.5, "min": 0.0}),
                _spec("f32", [3], "float32"),
                _spec("i32", [2], "int32"),
                _spec("flags", [3], "bool"),
            ],
        },
    ]
    shards = {"group1-shard1of2.bin": first[:7], "group1-shard2of2.bin": first[7:], "group2-shard1of1.bin": second}
    conv = {
        "name": "conv",
        "op": "Conv2D",
        "input": ["x", "f16"],
        "attr": {
            "strides": {"list": {"i": ["1", "2", "2", "1"]}},
            "padding": {"s": _b64("SAME")},
            "explicit_paddings": {"list": {}},
            "epsilon": {"f": 0.001},
            "use_cudnn_on_gpu": {"b": True},
            "fused_ops": {"list": {"s": [_b64("BiasAdd"), _b64("Relu")]}},
            "T": {"type": "DT_FLOAT"},
        },
    }
    placeholder = {
        "name": "x",
        "op": "Placeholder",
        "attr": {"shape": {"shape": {"dim": [{"size": "-1"}, {"size": "8"}, {"size": "8"}, {"size": "3"}]}}},
    }
    names = ["f16", "u8", "u16", "u8_int", "f32", "i32", "flags"]
    return _write_model(tmp_path, groups, shards, [placeholder, *(_const(n) for n in names), conv])


def test_weights_are_decoded_as_tfjs_decodes_them(small_model: Path) -> None:
    model = load_graph_model(small_model)
    expected_f16 = np.array([[0.5, -2.0, 1e-3], [65504.0, 0.0, -0.25]], dtype=np.float16).astype(np.float32)
    np.testing.assert_array_equal(model.weight("f16"), expected_f16)
    np.testing.assert_array_equal(model.weight("u8"), np.array([-1.0, -0.5, 0.0, 126.5], np.float32))
    np.testing.assert_array_equal(model.weight("u16"), np.array([2.0, 6.0, 2.0 + 65535e-4], np.float32))
    np.testing.assert_array_equal(model.weight("u8_int"), np.array([0, 2, 3], np.int32))  # 1.5 and 2.5 round up
    np.testing.assert_array_equal(model.weight("f32"), np.array([1.5, -3.25, 7.0], np.float32))
    np.testing.assert_array_equal(model.weight("i32"), np.array([1, 2], np.int32))
    np.testing.assert_array_equal(model.weight("flags"), np.array([True, False, True]))
    assert model.weight("f16").dtype == np.float32 and model.weight("f16").shape == (2, 3)
    assert model.weight("u8_int").dtype == np.int32


def test_node_attributes_are_typed(small_model: Path) -> None:
    conv = load_graph_model(small_model).node("conv:0")
    assert conv.op == "Conv2D" and conv.inputs == ("x", "f16")
    assert conv.ints("strides") == (1, 2, 2, 1)
    assert conv.text("padding") == "SAME"
    assert conv.attrs["fused_ops"] == ("BiasAdd", "Relu")
    assert conv.attrs["epsilon"] == pytest.approx(0.001)
    assert conv.attrs["explicit_paddings"] == ()
    assert conv.flag("use_cudnn_on_gpu", False) is True
    assert conv.flag("keep_dims", False) is False
    assert load_graph_model(small_model).node("x").attrs["shape"] == TensorShape((-1, 8, 8, 3))
    with pytest.raises(TfjsModelError, match="'conv' .* has no attribute 'dilations' \\(it has: .*strides"):
        conv.ints("dilations")
    with pytest.raises(TfjsModelError, match="'padding' is 'SAME', not a list of ints"):
        conv.ints("padding")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing_shard", "weight shard 'group1-shard2of2.bin' not found"),
        ("short_shard", r"shards hold 21 bytes \(group1-shard1of2.bin 7 B, group1-shard2of2.bin 14 B\) but .* need 22"),
        ("long_shard", "shards hold 23 bytes"),
        ("nan_weight", "weight 'f16' holds NaN or infinite values"),
        ("bad_json", "not valid JSON"),
        ("layers_model", "format is 'layers-model'; only TF.js graph models"),
        ("const_without_weight", "Const node 'ghost' has no weight in weightsManifest"),
        ("string_weight", "weight 'f32' has dtype 'string'; supported: bool, float32, int32"),
        ("int8_quantisation", "quantization dtype 'int8' is not supported; supported: float16, uint16, uint8"),
        ("escaping_shard_path", "must be a file name relative to the model.json"),
    ],
)
def test_broken_models_are_refused_naming_the_file_and_the_fault(small_model: Path, damage: str, message: str) -> None:
    folder = small_model.parent
    document = json.loads(small_model.read_text())
    shard = folder / "group1-shard2of2.bin"
    if damage == "missing_shard":
        shard.unlink()
    elif damage == "short_shard":
        shard.write_bytes(shard.read_bytes()[:-1])
    elif damage == "long_shard":
        shard.write_bytes(shard.read_bytes() + b"\0")
    elif damage == "nan_weight":
        (folder / "group1-shard1of2.bin").write_bytes(b"\xff\x7f" + (folder / "group1-shard1of2.bin").read_bytes()[2:])
    elif damage == "bad_json":
        small_model.write_text(small_model.read_text()[:-5])
    elif damage == "layers_model":
        document["format"] = "layers-model"
    elif damage == "const_without_weight":
        document["modelTopology"]["node"].append(_const("ghost"))
    elif damage == "string_weight":
        document["weightsManifest"][1]["weights"][1]["dtype"] = "string"
    elif damage == "int8_quantisation":
        document["weightsManifest"][0]["weights"][1]["quantization"]["dtype"] = "int8"
    elif damage == "escaping_shard_path":
        document["weightsManifest"][1]["paths"] = ["../elsewhere.bin"]
    if damage not in ("missing_shard", "short_shard", "long_shard", "nan_weight", "bad_json"):
        small_model.write_text(json.dumps(document))
    with pytest.raises(TfjsModelError, match=message) as raised:
        load_graph_model(small_model)
    assert str(folder) in str(raised.value), "the error must name the file"


@pytest.fixture
def faceres_copy(tmp_path: Path) -> Path:
    for name in ("faceres.json", "faceres.bin"):
        shutil.copy(MODEL_DIR / name, tmp_path / name)
    return tmp_path


def test_missing_faceres_shard_is_named(faceres_copy: Path) -> None:
    (faceres_copy / "faceres.bin").unlink()
    with pytest.raises(TfjsModelError, match="weight shard 'faceres.bin' not found .* next to its model.json"):
        load_faceres_graph(faceres_copy)


def test_corrupt_faceres_shard_of_the_right_size_is_caught_by_its_digest(faceres_copy: Path) -> None:
    """A flipped byte keeps the size, and fp16 weights stay finite: only the digest can tell."""
    data = bytearray((faceres_copy / "faceres.bin").read_bytes())
    data[1000] ^= 0x01
    (faceres_copy / "faceres.bin").write_bytes(bytes(data))
    with pytest.raises(TfjsModelError, match="faceres.bin: sha256 is [0-9a-f]{64}, expected 2c7d2d62.*corrupt"):
        load_faceres_graph(faceres_copy)


def test_truncated_faceres_shard_is_refused(faceres_copy: Path) -> None:
    shard = faceres_copy / "faceres.bin"
    shard.write_bytes(shard.read_bytes()[:-64])
    with pytest.raises(TfjsModelError, match="sha256"):
        load_faceres_graph(faceres_copy)
    with pytest.raises(TfjsModelError, match="shards hold 6978750 bytes .* need 6978814: a shard is truncated"):
        load_graph_model(faceres_copy / "faceres.json")


def test_unsupported_op_is_listed_with_the_supported_ones(faceres_copy: Path) -> None:
    path = faceres_copy / "faceres.json"
    document = json.loads(path.read_text())
    for node in document["modelTopology"]["node"]:
        if node["name"] == "conv_dw_5_relu/Relu":
            node["op"] = "Relu6"
    path.write_text(json.dumps(document))
    with pytest.raises(
        TfjsModelError, match=r"unsupported op\(s\) .*: Relu6 \(conv_dw_5_relu/Relu\); .* supports .*Conv2D"
    ):
        compile_layers(load_graph_model(path))
