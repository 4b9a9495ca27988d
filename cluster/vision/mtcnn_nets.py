"""MTCNN's three cascade networks (P-, R- and O-Net) and the loader of their pretrained weights.

The weights are the ones facenet-pytorch ships (converted from the original Caffe model). We read
its `data/*.pt` state dicts from disk and never import the package: its `__init__` pulls in tqdm,
requests and training code we do not need.
"""

import importlib.util
from functools import cache
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from cluster.vision.errors import ModelWeightsError

WEIGHTS_PACKAGE = "facenet_pytorch"
WEIGHTS_DIR = "data"
INSTALL_HINT = "pip install --no-deps facenet-pytorch==2.6.0"

PNET_WEIGHTS = "pnet.pt"
RNET_WEIGHTS = "rnet.pt"
ONET_WEIGHTS = "onet.pt"

PNET_WINDOW = 12
"""P-Net's receptive field: each output cell sees a 12x12 input window."""
PNET_STRIDE = 2
"""Input pixels between neighbouring output cells (from its one 2x2 pooling)."""

PNET_KEY_MAP: dict[str, str] = {"conv4_1": "classifier", "conv4_2": "box_regressor"}
RNET_KEY_MAP: dict[str, str] = {
    "dense4": "dense",
    "prelu4": "prelu_dense",
    "dense5_1": "classifier",
    "dense5_2": "box_regressor",
}
ONET_KEY_MAP: dict[str, str] = {
    "dense5": "dense",
    "prelu5": "prelu_dense",
    "dense6_1": "classifier",
    "dense6_2": "box_regressor",
    "dense6_3": "landmark_regressor",
}
"""facenet-pytorch module name -> ours; modules missing from a map keep their name."""


def _face_probability(logits: torch.Tensor) -> torch.Tensor:
    """Probability of the 'face' class (channel 1) of a 2-way classifier output."""
    return torch.softmax(logits, dim=1)[:, 1]


def _max_pool_2x2(features: torch.Tensor) -> torch.Tensor:
    """2x2, stride-2, ceil-mode max pooling from two strided maxima.

    Same values as `nn.MaxPool2d(2, 2, ceil_mode=True)` (an odd last row or column is kept as
    is), several times faster on channels-last CPU tensors, where P-Net spends much of its time.
    """
    height, width = features.shape[-2:]
    even_height, even_width = height - height % 2, width - width % 2
    rows = torch.maximum(features[..., 0:even_height:2, :], features[..., 1:even_height:2, :])
    if height % 2:
        rows = torch.cat([rows, features[..., even_height:, :]], dim=-2)
    pooled = torch.maximum(rows[..., 0:even_width:2], rows[..., 1:even_width:2])
    if width % 2:
        pooled = torch.cat([pooled, rows[..., even_width:]], dim=-1)
    return pooled


def _flatten_like_caffe(features: torch.Tensor) -> torch.Tensor:
    """Flatten (N, C, H, W) in (W, H, C) order, the order the dense layers were trained on."""
    return features.permute(0, 3, 2, 1).flatten(1)


class PNet(nn.Module):
    """Proposal net: a fully convolutional 12x12-window face/non-face classifier."""

    @staticmethod
    def output_size(input_size: int) -> int:
        """Output cells along a side of `input_size` pixels: 3x3 conv, ceil-mode 2x2 pool, two
        3x3 convs (so at least PNET_WINDOW pixels give one cell)."""
        return -(-(input_size - 2) // 2) - 4

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.classifier = nn.Conv2d(32, 2, kernel_size=1)
        self.box_regressor = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return box offsets (N, 4, h, w) and face probabilities (N, h, w) per window."""
        x = _max_pool_2x2(self.prelu1(self.conv1(images)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.box_regressor(x), _face_probability(self.classifier(x))


class RNet(nn.Module):
    """Refinement net: rescores and refines 24x24 crops of P-Net's proposals."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense = nn.Linear(576, 128)
        self.prelu_dense = nn.PReLU(128)
        self.classifier = nn.Linear(128, 2)
        self.box_regressor = nn.Linear(128, 4)

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return box offsets (N, 4) and face probabilities (N,)."""
        x = self.pool1(self.prelu1(self.conv1(crops)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu_dense(self.dense(_flatten_like_caffe(x)))
        return self.box_regressor(x), _face_probability(self.classifier(x))


class ONet(nn.Module):
    """Output net: final score, box refinement and five landmarks from 48x48 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense = nn.Linear(1152, 256)
        self.prelu_dense = nn.PReLU(256)
        self.classifier = nn.Linear(256, 2)
        self.box_regressor = nn.Linear(256, 4)
        self.landmark_regressor = nn.Linear(256, 10)

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return box offsets (N, 4), landmarks (N, 10: five x then five y, relative to the
        crop) and face probabilities (N,)."""
        x = self.pool1(self.prelu1(self.conv1(crops)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu_dense(self.dense(_flatten_like_caffe(x)))
        return (
            self.box_regressor(x),
            self.landmark_regressor(x),
            _face_probability(self.classifier(x)),
        )


class MTCNNNets(NamedTuple):
    """The three cascade stages, fp32 and in eval mode, on one device."""

    pnet: PNet
    rnet: RNet
    onet: ONet


def weights_dir() -> Path:
    """Directory of the installed facenet-pytorch package's weight files."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelWeightsError(
            f"MTCNN weights ({PNET_WEIGHTS}, {RNET_WEIGHTS}, {ONET_WEIGHTS}) come from the "
            f"{WEIGHTS_PACKAGE} package, which is not installed; run `{INSTALL_HINT}`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_DIR


@cache
def read_weights(file_name: str) -> dict[str, torch.Tensor]:
    """Read one facenet-pytorch state dict from disk, once per process."""
    path = weights_dir() / file_name
    if not path.is_file():
        raise ModelWeightsError(f"MTCNN weight file {path} not found; run `{INSTALL_HINT}`")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelWeightsError(
            f"MTCNN weight file {path} could not be read ({err}); reinstall with `{INSTALL_HINT}`"
        ) from err
    if not isinstance(state, dict):
        raise ModelWeightsError(
            f"MTCNN weight file {path} holds a {type(state).__name__}, not a state dict; "
            f"reinstall with `{INSTALL_HINT}`"
        )
    return state


def rename_keys(state: dict[str, torch.Tensor], key_map: dict[str, str]) -> dict[str, torch.Tensor]:
    """Map facenet-pytorch's `module.param` keys onto our module names."""
    renamed = {}
    for key, tensor in state.items():
        module, _, param = key.rpartition(".")
        renamed[f"{key_map.get(module, module)}.{param}"] = tensor
    return renamed


def _load(net: nn.Module, file_name: str, key_map: dict[str, str]) -> None:
    """Load one net's weights; a layout mismatch (another facenet-pytorch version) is a
    ModelWeightsError that says which version to install."""
    try:
        net.load_state_dict(rename_keys(read_weights(file_name), key_map))
    except RuntimeError as err:
        raise ModelWeightsError(
            f"MTCNN weight file {file_name} does not fit {type(net).__name__} ({err}); "
            f"install the expected version with `{INSTALL_HINT}`"
        ) from err


def load_nets(device: torch.device) -> MTCNNNets:
    """Build P-, R- and O-Net with pretrained fp32 weights on `device`, in eval mode."""
    nets = MTCNNNets(PNet(), RNet(), ONet())
    _load(nets.pnet, PNET_WEIGHTS, PNET_KEY_MAP)
    _load(nets.rnet, RNET_WEIGHTS, RNET_KEY_MAP)
    _load(nets.onet, ONET_WEIGHTS, ONET_KEY_MAP)
    for net in nets:
        net.to(device=device).eval().requires_grad_(False)
    return nets
