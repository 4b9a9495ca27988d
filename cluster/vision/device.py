"""Choosing where the face models run: the one place that turns `auto` into a device."""

from dataclasses import dataclass
from typing import Literal

import torch


@dataclass(frozen=True)
class ComputeTarget:
    """A resolved torch device and whether the models run in fp16 on it."""

    device: str
    half: bool


def resolve_target(device: Literal["auto", "cpu", "cuda"], half: bool | Literal["auto"]) -> ComputeTarget:
    """Pick cuda when asked or when `auto` finds a GPU; fp16 only ever on cuda."""
    cuda_available = torch.cuda.is_available()
    if device == "cuda" and not cuda_available:
        raise RuntimeError("device is set to cuda but torch sees no GPU; set face_models.device to auto or cpu")
    chosen = "cuda" if device == "cuda" or (device == "auto" and cuda_available) else "cpu"
    if chosen == "cpu" and half is True:
        raise ValueError("fp16 (half: true) is only supported on cuda; set face_models.half to auto or false")
    use_half = chosen == "cuda" and half is not False
    return ComputeTarget(device=chosen, half=use_half)
