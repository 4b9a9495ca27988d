"""dlib's face recognition ResNet-29 as a torch module, built from the weights `dlib_dat` reads.

The network (dlib's `dnn_face_recognition_ex` "metric network"): a 7x7 stride-2 conv, max pool
3x3 stride 2, fourteen residual blocks of two 3x3 convs (32, 64, 128, 256 filters; four of them
downsample), global average pool and a 128-d fully connected layer without bias.

Two dlib behaviours matter for matching it exactly:
- dlib's stride-2 convs and pools have no padding, so a 35 or 17 pixel map shrinks by flooring
  ((n - k) // s + 1), and in two downsampling blocks the conv path (3x3 window) comes out one
  pixel smaller than the pooled skip path (2x2 window): 3x3 against 4x4, then 1x1 against 2x2.
- dlib's `add_prev` zero-pads the smaller input (channels, then rows and columns at the end), so
  the sum takes the larger shape; the skip path's extra channels are zero as well.
Each affine layer (dlib's frozen batch norm) is folded into the conv before it.
"""

import torch
import torch.nn.functional as F
from torch import nn

from cluster.vision.dlib_dat import Affine, Conv, FaceResNet, Pool


def _folded_conv(conv: Conv, affine: Affine) -> nn.Conv2d:
    """conv followed by a per-channel affine, as one conv: w * scale, b * scale + shift."""
    out_channels, in_channels, size, _ = conv.weight.shape
    layer = nn.Conv2d(in_channels, out_channels, size, stride=conv.stride, padding=conv.padding)
    scale = torch.tensor(affine.scale, dtype=torch.float64)
    weight = torch.tensor(conv.weight, dtype=torch.float64) * scale[:, None, None, None]
    bias = torch.tensor(conv.bias, dtype=torch.float64) * scale + torch.tensor(affine.shift, dtype=torch.float64)
    layer.weight = nn.Parameter(weight.float())
    layer.bias = nn.Parameter(bias.float())
    return layer


def _pool(pool: Pool) -> nn.Module:
    """dlib's pools clip windows to the image; with count_include_pad=False torch's do the same.

    (This network's pools have no padding, so that only matters for other dlib networks.)
    """
    if pool.kind == "max":
        return nn.MaxPool2d(pool.size, stride=pool.stride, padding=pool.padding)
    return nn.AvgPool2d(pool.size, stride=pool.stride, padding=pool.padding, count_include_pad=False)


def _add_zero_padded(fresh: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """fresh + other as dlib's add_prev does it: each input zero-padded at the end to the larger shape.

    `fresh` must be a tensor nothing else holds (a conv output): it is added to in place when it
    is the larger input, which saves a full-size allocation in most blocks.
    """
    if fresh.shape == other.shape:
        return fresh.add_(other)
    _, channels, rows, cols = other.shape
    if fresh.shape[1] >= channels and fresh.shape[2] >= rows and fresh.shape[3] >= cols:
        fresh[:, :channels, :rows, :cols] += other
        return fresh
    shape = [max(a, b) for a, b in zip(fresh.shape, other.shape, strict=True)]
    layout = torch.channels_last if fresh.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    total = torch.zeros(shape, dtype=fresh.dtype, device=fresh.device).contiguous(memory_format=layout)
    total[:, : fresh.shape[1], : fresh.shape[2], : fresh.shape[3]] = fresh
    total[:, :channels, :rows, :cols] += other
    return total


class _ResidualBlock(nn.Module):
    """relu(conv-affine, relu, conv-affine of x, plus x or its average pool)."""

    def __init__(self, conv1: nn.Conv2d, conv2: nn.Conv2d, skip_pool: nn.Module | None):
        super().__init__()
        self.conv1 = conv1
        self.conv2 = conv2
        self.skip_pool = skip_pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu_(self.conv1(x)))
        skip = x if self.skip_pool is None else self.skip_pool(x)
        return F.relu_(_add_zero_padded(y, skip))


class DlibFaceResNet(nn.Module):
    """Chips in, dlib's raw 128-d face descriptors out.

    Input: (n, size, size, 3) uint8 RGB chips (size 150, aligned as dlib's get_face_chip does),
    as one tensor. The module normalises them in float32 (dlib's (value - mean) / 256), then
    runs in the dtype of its weights, so `.half()` gives an fp16 network with exact inputs.
    """

    def __init__(self, net: FaceResNet, channels_last: bool = False):
        super().__init__()
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.mean_rgb = net.input.mean_rgb
        self.stem = _folded_conv(net.stem_conv, net.stem_affine)
        self.stem_pool = _pool(net.stem_pool)
        self.blocks = nn.Sequential(
            *(
                _ResidualBlock(
                    _folded_conv(block.conv1, block.affine1),
                    _folded_conv(block.conv2, block.affine2),
                    _pool(block.skip_pool) if block.skip_pool is not None else None,
                )
                for block in net.blocks
            )
        )
        out_features, in_features = net.fc.weight.shape
        self.fc = nn.Linear(in_features, out_features, bias=net.fc.bias is not None)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor(net.fc.weight))
            if net.fc.bias is not None:
                self.fc.bias.copy_(torch.tensor(net.fc.bias))
        self.requires_grad_(False)
        self.to(memory_format=self.memory_format)
        self.eval()

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean_rgb, dtype=torch.float32, device=chips.device).view(1, 3, 1, 1)
        x = (chips.permute(0, 3, 1, 2).float() - mean).div_(256.0)
        x = x.to(dtype=self.stem.weight.dtype, memory_format=self.memory_format)
        x = self.stem_pool(F.relu_(self.stem(x)))
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))
