"""Reader for dlib's DNN file format, enough of it for the face recognition ResNet.

The embedder runs dlib's trained network in torch, so it reads the weights straight from the
`.dat` file that the `face-recognition-models` package installs, with numpy and no dlib.

dlib writes a network outermost layer first: a version number per layer, down to the input
layer, then each layer's details from the input outward. Tag and skip layers (the residual
wiring) are only a version number, so the file does not say which tag an `add_prev` adds; that
wiring is recovered by matching the layers against the two residual block shapes dlib's face
network uses (`ares` and `ares_down`).
"""

import importlib.util
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import structlog

from cluster.vision.errors import ModelWeightsError

log = structlog.get_logger(__name__)

MODEL_FILENAME = "dlib_face_recognition_resnet_model_v1.dat"
MODELS_PACKAGE = "face_recognition_models"
INSTALL_HINT = "pip install face-recognition-models==0.3.0"

_LOSS_VERSION = 1
_WRAPPER_VERSION = 1
_LAYER_VERSION = 2
_INPUT_LAYER_VERSION = 3
_TENSOR_VERSION = 2
_ALIAS_VERSION = 1
_CONV_MODE = 0
_FC_NO_BIAS = 1
_FLOAT_SPECIAL_EXPONENTS = range(32000, 32003)
"""dlib marks inf, -inf and nan with these exponents; no trained weight should be one of them."""


@dataclass(frozen=True, eq=False)
class InputLayer:
    """dlib's `input_rgb_image_sized`: a size x size RGB image, scaled as (value - mean) / 256."""

    size: int
    mean_rgb: tuple[float, float, float]


@dataclass(frozen=True, eq=False)
class Conv:
    """A 2-d convolution with bias. weight: (out, in, k, k) float32, as torch lays it out."""

    weight: np.ndarray
    bias: np.ndarray
    stride: int
    padding: int


@dataclass(frozen=True, eq=False)
class Affine:
    """Per-channel scale and shift: dlib's inference form of batch norm (y = x * scale + shift)."""

    scale: np.ndarray
    shift: np.ndarray


@dataclass(frozen=True, eq=False)
class Relu:
    """max(x, 0)."""


@dataclass(frozen=True, eq=False)
class Pool:
    """Max or average pooling over square windows; size 0 means the whole image (dlib's convention)."""

    kind: Literal["max", "avg"]
    size: int
    stride: int
    padding: int

    @property
    def is_global(self) -> bool:
        return self.size == 0


@dataclass(frozen=True, eq=False)
class AddPrev:
    """Adds a tagged earlier output; dlib zero-pads whichever input is smaller in any dimension."""


@dataclass(frozen=True, eq=False)
class Wrapper:
    """A tag or skip layer: only its place in the stack is stored, not which of the two it is."""


@dataclass(frozen=True, eq=False)
class FullyConnected:
    """y = x @ weight.T (+ bias). weight: (out, in) float32, as torch lays it out."""

    weight: np.ndarray
    bias: np.ndarray | None


Layer = Conv | Affine | Relu | Pool | AddPrev | Wrapper | FullyConnected
_L = TypeVar("_L", bound=Layer)


@dataclass(frozen=True, eq=False)
class DlibNetwork:
    """A network as stored: its input layer and its layers from the input outward."""

    path: Path
    input: InputLayer
    layers: tuple[Layer, ...]


@dataclass(frozen=True, eq=False)
class ResidualBlock:
    """conv, affine, relu, conv, affine, plus the block's input, then relu.

    When `skip_pool` is set (dlib's `ares_down`) the first conv has stride 2 and the block's
    input reaches the sum through that average pool.
    """

    conv1: Conv
    affine1: Affine
    conv2: Conv
    affine2: Affine
    skip_pool: Pool | None


@dataclass(frozen=True, eq=False)
class FaceResNet:
    """dlib's face recognition network, grouped into the parts a port needs."""

    path: Path
    input: InputLayer
    stem_conv: Conv
    stem_affine: Affine
    stem_pool: Pool
    blocks: tuple[ResidualBlock, ...]
    head_pool: Pool
    fc: FullyConnected


def default_model_path() -> Path:
    """Where the installed `face_recognition_models` package keeps the ResNet weights.

    The package is located without being imported, because its `__init__` needs pkg_resources.
    """
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelWeightsError(
            f"the {MODELS_PACKAGE} package is not installed, so {MODEL_FILENAME} cannot be found; run: {INSTALL_HINT}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models" / MODEL_FILENAME


class _Reader:
    """A cursor over the file's bytes; every read checks bounds and names the file on failure."""

    def __init__(self, data: bytes, path: Path):
        self.data = data
        self.path = path
        self.pos = 0

    def fail(self, problem: str) -> ModelWeightsError:
        return ModelWeightsError(
            f"{self.path}: not a readable dlib face recognition model ({problem}, at byte {self.pos} "
            f"of {len(self.data)}); the file is damaged or of another kind, reinstall it with: "
            f"pip install --force-reinstall face-recognition-models==0.3.0"
        )

    def take(self, count: int, what: str) -> bytes:
        if count < 0 or self.pos + count > len(self.data):
            raise self.fail(f"file ends inside {what}")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def integer(self, what: str) -> int:
        """dlib's packed integer: a byte holding the length (low bits) and sign (0x80), then little-endian bytes."""
        header = self.take(1, what)[0]
        length = header & 0x0F
        if length == 0 or length > 8 or header & 0x70:
            raise self.fail(f"bad integer header 0x{header:02x} in {what}")
        value = int.from_bytes(self.take(length, what), "little")
        return -value if header & 0x80 else value

    def expect_int(self, expected: int, what: str) -> None:
        value = self.integer(what)
        if value != expected:
            raise self.fail(f"expected {what} {expected}, found {value}")

    def number(self, what: str) -> float:
        """dlib's portable float: mantissa and binary exponent, as two packed integers."""
        mantissa = self.integer(what)
        exponent = self.integer(what)
        if exponent in _FLOAT_SPECIAL_EXPONENTS:
            raise self.fail(f"{what} is inf or nan")
        return float(np.ldexp(float(mantissa), exponent))

    def string(self, what: str) -> str:
        length = self.integer(what)
        if length > 256:
            raise self.fail(f"implausible length {length} for {what}")
        raw = self.take(length, what)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise self.fail(f"{what} is not text") from exc

    def flag(self, what: str) -> bool:
        value = self.take(1, what)[0]
        if value not in (ord("0"), ord("1")):
            raise self.fail(f"bad boolean byte 0x{value:02x} in {what}")
        return value == ord("1")

    def shape(self, what: str) -> tuple[int, int, int, int]:
        dims = tuple(self.integer(what) for _ in range(4))
        if any(d < 0 for d in dims):
            raise self.fail(f"negative dimension in {what} shape {dims}")
        return dims  # type: ignore[return-value]

    def tensor(self, what: str) -> np.ndarray:
        """A tensor: version, shape (n, k, rows, cols), then little-endian float32 values, returned flat."""
        self.expect_int(_TENSOR_VERSION, f"{what} tensor version")
        count = math.prod(self.shape(what))
        raw = self.take(4 * count, f"{what} values")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)

    def alias(self, what: str) -> tuple[int, int, int, int]:
        """An alias tensor: a shape that views part of a layer's parameter tensor."""
        self.expect_int(_ALIAS_VERSION, f"{what} alias version")
        return self.shape(what)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _square(reader: _Reader, rows: int, cols: int, what: str) -> int:
    if rows != cols:
        raise reader.fail(f"{what} is {rows}x{cols}; only square ones are supported")
    return rows


def _stride(reader: _Reader, what: str) -> int:
    stride = _square(reader, reader.integer(what), reader.integer(what), what)
    if stride < 1:
        raise reader.fail(f"{what} is {stride}")
    return stride


def _read_conv(reader: _Reader) -> Conv:
    params = reader.tensor("conv parameters")
    filters = reader.integer("conv filter count")
    size = _square(reader, reader.integer("conv rows"), reader.integer("conv cols"), "conv kernel")
    stride = _stride(reader, "conv stride")
    padding = _square(reader, reader.integer("conv padding"), reader.integer("conv padding"), "conv padding")
    weight_shape = reader.alias("conv weights")
    bias_shape = reader.alias("conv biases")
    for name in ("learning rate", "weight decay", "bias learning rate", "bias weight decay"):
        reader.number(f"conv {name} multiplier")
    n_weights = math.prod(weight_shape)
    if weight_shape[0] != filters or weight_shape[2:] != (size, size) or bias_shape != (1, filters, 1, 1):
        raise reader.fail(f"conv weight shape {weight_shape} and bias shape {bias_shape} do not fit {filters} filters")
    if params.size != n_weights + filters:
        raise reader.fail(f"conv has {params.size} parameters, expected {n_weights + filters}")
    return Conv(
        weight=_read_only(params[:n_weights].reshape(weight_shape)),
        bias=_read_only(params[n_weights:]),
        stride=stride,
        padding=padding,
    )


def _read_affine(reader: _Reader) -> Affine:
    params = reader.tensor("affine parameters")
    gamma_shape = reader.alias("affine scale")
    beta_shape = reader.alias("affine shift")
    mode = reader.integer("affine mode")
    if mode != _CONV_MODE or gamma_shape != beta_shape or gamma_shape != (1, gamma_shape[1], 1, 1):
        raise reader.fail(f"affine layer of mode {mode} with shape {gamma_shape}; only per-channel ones are supported")
    channels = gamma_shape[1]
    if params.size != 2 * channels:
        raise reader.fail(f"affine layer has {params.size} parameters, expected {2 * channels}")
    return Affine(scale=_read_only(params[:channels]), shift=_read_only(params[channels:]))


def _read_pool(reader: _Reader, kind: Literal["max", "avg"]) -> Pool:
    size = _square(reader, reader.integer("pool rows"), reader.integer("pool cols"), "pool window")
    stride = _stride(reader, "pool stride")
    padding = _square(reader, reader.integer("pool padding"), reader.integer("pool padding"), "pool padding")
    return Pool(kind=kind, size=size, stride=stride, padding=padding)


def _read_fc(reader: _Reader) -> FullyConnected:
    outputs = reader.integer("fc output count")
    inputs = reader.integer("fc input count")
    params = reader.tensor("fc parameters")
    weight_shape = reader.alias("fc weights")
    reader.alias("fc biases")
    bias_mode = reader.integer("fc bias mode")
    for name in ("learning rate", "weight decay", "bias learning rate", "bias weight decay"):
        reader.number(f"fc {name} multiplier")
    n_bias = 0 if bias_mode == _FC_NO_BIAS else outputs
    if weight_shape != (inputs, outputs, 1, 1) or params.size != inputs * outputs + n_bias:
        raise reader.fail(
            f"fc of {inputs} inputs and {outputs} outputs has weights {weight_shape} and {params.size} parameters"
        )
    weight = params[: inputs * outputs].reshape(inputs, outputs).T.copy()
    bias = _read_only(params[inputs * outputs :]) if n_bias else None
    return FullyConnected(weight=_read_only(weight), bias=bias)


def _read_layer(reader: _Reader) -> Layer:
    name = reader.string("layer name")
    if name == "con_4":
        return _read_conv(reader)
    if name == "affine_":
        return _read_affine(reader)
    if name == "relu_":
        return Relu()
    if name == "add_prev_":
        return AddPrev()
    if name == "max_pool_2":
        return _read_pool(reader, "max")
    if name == "avg_pool_2":
        return _read_pool(reader, "avg")
    if name == "fc_2":
        return _read_fc(reader)
    raise reader.fail(f"unsupported layer type {name!r}")


def _read_input(reader: _Reader) -> InputLayer:
    name = reader.string("input layer name")
    if name != "input_rgb_image_sized":
        raise reader.fail(f"unsupported input layer {name!r}")
    mean_rgb = (reader.number("red mean"), reader.number("green mean"), reader.number("blue mean"))
    rows = reader.integer("input rows")
    cols = reader.integer("input cols")
    return InputLayer(size=_square(reader, rows, cols, "input image"), mean_rgb=mean_rgb)


def _skip_layer_state(reader: _Reader) -> None:
    """Training-time state each layer carries: three flags and three (empty) scratch tensors."""
    for _ in range(3):
        reader.flag("layer state flag")
    for _ in range(3):
        reader.tensor("layer scratch")


def parse_network(data: bytes, path: Path) -> DlibNetwork:
    """Parse a serialised `loss_metric` network from `data` (read from `path`, named in errors)."""
    reader = _Reader(data, path)
    reader.expect_int(_LOSS_VERSION, "loss layer version")
    loss = reader.string("loss layer name")
    if loss != "loss_metric_2":
        raise reader.fail(f"expected a loss_metric network, found loss layer {loss!r}")
    reader.number("loss margin")
    reader.number("loss distance threshold")
    versions: list[int] = []
    while True:
        version = reader.integer("layer version")
        if version == _INPUT_LAYER_VERSION:
            break
        if version not in (_WRAPPER_VERSION, _LAYER_VERSION) or len(versions) > 10_000:
            raise reader.fail(f"unexpected layer version {version}")
        versions.append(version)
    input_layer = _read_input(reader)
    layers: list[Layer] = [_read_layer(reader)]
    _skip_layer_state(reader)
    reader.integer("sample expansion factor")
    for version in reversed(versions):
        if version == _WRAPPER_VERSION:
            layers.append(Wrapper())
            continue
        layers.append(_read_layer(reader))
        _skip_layer_state(reader)
    if reader.pos != len(data):
        raise reader.fail(f"{len(data) - reader.pos} unexpected bytes after the network")
    return DlibNetwork(path=path, input=input_layer, layers=tuple(layers))


class _Layers:
    """Walks a layer tuple, checking each layer's type, for matching the network's shape."""

    def __init__(self, network: DlibNetwork):
        self.network = network
        self.index = 0

    def peek(self) -> Layer | None:
        layers = self.network.layers
        return layers[self.index] if self.index < len(layers) else None

    def take(self, kind: type[_L], what: str) -> _L:
        layer = self.peek()
        if not isinstance(layer, kind):
            found = type(layer).__name__ if layer is not None else "the end of the network"
            raise ModelWeightsError(
                f"{self.network.path}: layer {self.index} should be a {kind.__name__} ({what}) but is {found}; "
                f"this is not dlib's face recognition ResNet, reinstall it with: {INSTALL_HINT}"
            )
        self.index += 1
        return layer


def _block(layers: _Layers) -> ResidualBlock:
    layers.take(Wrapper, "the tag on the block input")
    conv1 = layers.take(Conv, "first block conv")
    affine1 = layers.take(Affine, "first block affine")
    layers.take(Relu, "block relu")
    conv2 = layers.take(Conv, "second block conv")
    affine2 = layers.take(Affine, "second block affine")
    skip_pool = None
    if isinstance(layers.peek(), Wrapper):
        layers.take(Wrapper, "the tag on the block output")
        layers.take(Wrapper, "the skip back to the block input")
        skip_pool = layers.take(Pool, "average pool on the skip path")
    layers.take(AddPrev, "residual sum")
    layers.take(Relu, "relu after the residual sum")
    return ResidualBlock(conv1=conv1, affine1=affine1, conv2=conv2, affine2=affine2, skip_pool=skip_pool)


def _check_shapes(net: FaceResNet) -> None:
    channels = net.stem_conv.weight.shape[0]
    checks = [
        (net.input.size, 150, "input image size"),
        (net.stem_conv.weight.shape[1], 3, "stem conv input channels"),
        (net.stem_affine.scale.size, channels, "stem affine channels"),
        ((net.stem_pool.kind, net.stem_pool.is_global), ("max", False), "stem pool"),
    ]
    for i, block in enumerate(net.blocks):
        out = block.conv1.weight.shape[0]
        checks += [
            (block.conv1.weight.shape[1], channels, f"block {i} conv1 input channels"),
            (block.affine1.scale.size, out, f"block {i} affine1 channels"),
            (block.conv2.weight.shape[:2], (out, out), f"block {i} conv2 channels"),
            (block.affine2.scale.size, out, f"block {i} affine2 channels"),
        ]
        if block.skip_pool is None:
            checks.append((out, channels, f"block {i} output channels (no downsampling)"))
        else:
            pool = block.skip_pool
            checks.append(((pool.kind, pool.is_global), ("avg", False), f"block {i} skip pool"))
        channels = out
    checks += [
        ((net.head_pool.kind, net.head_pool.is_global), ("avg", True), "head pool (kind, global)"),
        (net.fc.weight.shape[1], channels, "fc input size"),
    ]
    for actual, expected, what in checks:
        if actual != expected:
            raise ModelWeightsError(
                f"{net.path}: {what} is {actual}, expected {expected}; "
                f"this is not dlib's face recognition ResNet, reinstall it with: {INSTALL_HINT}"
            )


def face_resnet(network: DlibNetwork) -> FaceResNet:
    """Group a parsed network as stem, residual blocks and head; raise if it has another shape."""
    layers = _Layers(network)
    stem_conv = layers.take(Conv, "stem conv")
    stem_affine = layers.take(Affine, "stem affine")
    layers.take(Relu, "stem relu")
    stem_pool = layers.take(Pool, "stem max pool")
    blocks = []
    while isinstance(layers.peek(), Wrapper):
        blocks.append(_block(layers))
    head_pool = layers.take(Pool, "global average pool")
    fc = layers.take(FullyConnected, "final fully connected layer")
    if layers.peek() is not None:
        raise ModelWeightsError(f"{network.path}: unexpected layers after the final fully connected layer")
    net = FaceResNet(
        path=network.path,
        input=network.input,
        stem_conv=stem_conv,
        stem_affine=stem_affine,
        stem_pool=stem_pool,
        blocks=tuple(blocks),
        head_pool=head_pool,
        fc=fc,
    )
    _check_shapes(net)
    return net


def read_face_resnet(path: Path | str) -> FaceResNet:
    """Read and check dlib's face recognition ResNet from a `.dat` file."""
    file_path = Path(path)
    try:
        data = file_path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelWeightsError(f"{file_path}: model weights not found; install them with: {INSTALL_HINT}") from exc
    except OSError as exc:
        raise ModelWeightsError(f"{file_path}: cannot read the model weights ({exc.strerror})") from exc
    network = parse_network(data, file_path)
    net = face_resnet(network)
    log.info("weights_loaded", path=str(file_path), layers=len(network.layers), residual_blocks=len(net.blocks))
    return net


@lru_cache(maxsize=4)
def load_face_resnet(path: Path | None = None) -> FaceResNet:
    """The installed (or given) face ResNet, parsed once per process and shared."""
    return read_face_resnet(path if path is not None else default_model_path())
