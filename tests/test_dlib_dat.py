"""The dlib .dat reader: the installed face ResNet parses into the expected layers, damaged files fail clearly."""

import importlib.util
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cluster.vision import dlib_dat
from cluster.vision.dlib_dat import (
    AddPrev,
    Affine,
    Conv,
    DlibNetwork,
    FullyConnected,
    InputLayer,
    Pool,
    Relu,
    Wrapper,
    default_model_path,
    face_resnet,
    load_face_resnet,
    parse_network,
    read_face_resnet,
)
from cluster.vision.errors import ModelWeightsError

INSTALL_HINT = "pip install face-recognition-models==0.3.0"


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return default_model_path().read_bytes()


def test_default_path_points_at_the_installed_file() -> None:
    path = default_model_path()
    assert path.name == "dlib_face_recognition_resnet_model_v1.dat"
    assert path.is_file()


def test_layer_types_as_stored(model_bytes: bytes) -> None:
    network = parse_network(model_bytes, Path("model.dat"))
    counts = Counter(type(layer) for layer in network.layers)
    assert counts == {
        Conv: 29,
        Affine: 29,
        Relu: 29,
        AddPrev: 14,
        Pool: 6,
        Wrapper: 22,
        FullyConnected: 1,
    }
    assert network.input.size == 150
    assert network.input.mean_rgb == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)


def test_resnet_structure() -> None:
    net = load_face_resnet()
    assert net.stem_conv.weight.shape == (32, 3, 7, 7)
    assert (net.stem_conv.stride, net.stem_conv.padding) == (2, 0)
    assert (net.stem_pool.kind, net.stem_pool.size, net.stem_pool.stride, net.stem_pool.padding) == ("max", 3, 2, 0)
    widths = [block.conv1.weight.shape[0] for block in net.blocks]
    assert widths == [32] * 3 + [64] * 4 + [128] * 3 + [256] * 4
    downsampling = [i for i, block in enumerate(net.blocks) if block.skip_pool is not None]
    assert downsampling == [3, 7, 10, 13]
    for i, block in enumerate(net.blocks):
        expected = (2, 0) if i in downsampling else (1, 1)
        assert (block.conv1.stride, block.conv1.padding) == expected
        assert (block.conv2.stride, block.conv2.padding) == (1, 1)
        assert block.conv2.weight.shape == (widths[i], widths[i], 3, 3)
        assert block.affine1.scale.shape == block.affine2.shift.shape == (widths[i],)
        if block.skip_pool is not None:
            pool = block.skip_pool
            assert (pool.kind, pool.size, pool.stride, pool.padding) == ("avg", 2, 2, 0)
    assert net.head_pool.kind == "avg" and net.head_pool.is_global
    assert net.fc.weight.shape == (128, 256)
    assert net.fc.bias is None


def test_weights_are_finite_read_only_float32() -> None:
    net = load_face_resnet()
    arrays = [net.stem_conv.weight, net.stem_conv.bias, net.stem_affine.scale, net.fc.weight]
    for block in net.blocks:
        arrays += [block.conv1.weight, block.conv2.bias, block.affine1.scale, block.affine2.shift]
    for array in arrays:
        assert array.dtype == np.float32
        assert np.isfinite(array).all()
        assert not array.flags.writeable
        assert np.abs(array).max() > 0


def test_parsed_once_per_process() -> None:
    assert load_face_resnet() is load_face_resnet()


def test_missing_file_names_it_and_the_package(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.dat"
    with pytest.raises(ModelWeightsError) as info:
        read_face_resnet(missing)
    assert str(missing) in str(info.value)
    assert INSTALL_HINT in str(info.value)


def test_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelWeightsError, match="face-recognition-models==0.3.0"):
        dlib_dat.default_model_path()


@pytest.mark.parametrize("keep", [0, 1, 20, 300, 5000, 0.5, -1])
def test_truncated_file(tmp_path: Path, model_bytes: bytes, keep: float) -> None:
    length = int(len(model_bytes) * keep) if isinstance(keep, float) else keep % len(model_bytes)
    path = tmp_path / "truncated.dat"
    path.write_bytes(model_bytes[:length])
    with pytest.raises(ModelWeightsError) as info:
        read_face_resnet(path)
    message = str(info.value)
    assert str(path) in message
    assert "file ends inside" in message
    assert "face-recognition-models==0.3.0" in message


def test_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.dat"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    with pytest.raises(ModelWeightsError, match="not a readable dlib face recognition model"):
        read_face_resnet(path)


def test_other_dlib_model_is_refused() -> None:
    other = default_model_path().with_name("shape_predictor_5_face_landmarks.dat")
    with pytest.raises(ModelWeightsError, match=re.escape(str(other))):
        read_face_resnet(other)


def test_trailing_bytes_are_refused(tmp_path: Path, model_bytes: bytes) -> None:
    path = tmp_path / "trailing.dat"
    path.write_bytes(model_bytes + b"\x01\x00")
    with pytest.raises(ModelWeightsError, match="2 unexpected bytes after the network"):
        read_face_resnet(path)


def test_wrong_loss_layer(tmp_path: Path, model_bytes: bytes) -> None:
    path = tmp_path / "other_loss.dat"
    name = b"loss_metric_2"
    start = model_bytes.index(name)
    path.write_bytes(model_bytes[:start] + b"loss_metric_9" + model_bytes[start + len(name) :])
    with pytest.raises(ModelWeightsError, match="expected a loss_metric network"):
        read_face_resnet(path)


def test_corrupted_layer_shape(tmp_path: Path, model_bytes: bytes) -> None:
    """An fc whose stored input count disagrees with its weights is caught, not silently misread."""
    fc = model_bytes.rindex(b"fc_2") + len(b"fc_2")
    assert model_bytes[fc : fc + 2] == b"\x01\x80"
    path = tmp_path / "bad_fc.dat"
    path.write_bytes(model_bytes[:fc] + b"\x01\x40" + model_bytes[fc + 2 :])
    with pytest.raises(ModelWeightsError, match="fc of 256 inputs and 64 outputs"):
        read_face_resnet(path)


def test_network_of_another_shape_is_refused(model_bytes: bytes) -> None:
    network = parse_network(model_bytes, Path("model.dat"))
    no_fc = DlibNetwork(path=network.path, input=network.input, layers=network.layers[:-1])
    with pytest.raises(ModelWeightsError, match="should be a FullyConnected .* but is the end of the network"):
        face_resnet(no_fc)
    no_relu = DlibNetwork(path=network.path, input=network.input, layers=network.layers[:2] + network.layers[3:])
    with pytest.raises(ModelWeightsError, match="layer 2 should be a Relu"):
        face_resnet(no_relu)
    bigger_input = DlibNetwork(path=network.path, input=InputLayer(160, network.input.mean_rgb), layers=network.layers)
    with pytest.raises(ModelWeightsError, match="input image size is 160, expected 150"):
        face_resnet(bigger_input)
