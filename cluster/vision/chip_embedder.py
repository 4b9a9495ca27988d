"""`ChipEmbedder`: what every face-embedding network shares, whatever its architecture.

A network takes batches of aligned (n, size, size, 3) uint8 RGB chips and gives one descriptor
per chip; `embed` L2-normalises them so that cosine similarity is a dot product. The device,
fp16, thread and batch settings, the chip checks and the IEEE-fp32 guard on CUDA live here once;
a model (`FaceEmbedder` for dlib's ResNet, `FaceresEmbedder`) only says how its network is built
and what its chips look like.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import structlog
import torch
from torch import nn

from cluster.vision.chips import validate_chips

log = structlog.get_logger(__name__)


class ChipEmbedder(ABC):
    """A face network on `device`, in batches of at most `max_batch` chips.

    threads: torch CPU threads (torch.set_num_threads, process-wide); None leaves torch's default.
    channels_last: NHWC layout, which oneDNN convolves faster on CPU.
    half: fp16 weights and activations, on cuda only (CPU fp16 convolutions are slow or missing).
    """

    name: str
    chip_size: int
    descriptor_size: int
    align_hint: str
    """How to make the chips this model takes, appended to every chip error."""

    def __init__(
        self,
        device: str = "cpu",
        threads: int | None = None,
        channels_last: bool = True,
        half: bool = False,
        max_batch: int = 64,
    ):
        target = torch.device(device)
        if half and target.type != "cuda":
            raise ValueError(
                f"half (fp16) embedding is only supported on cuda, not on {device!r}; "
                "use half=False on cpu, or device='cuda'"
            )
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be at least 1, got {threads}")
            torch.set_num_threads(threads)
        model = self.build(channels_last).to(target)
        self.model = model.half() if half else model
        self.device = target
        self.half = half
        self.max_batch = max_batch
        log.info(
            "embedder_ready",
            model=self.name,
            device=str(target),
            threads=torch.get_num_threads(),
            channels_last=channels_last,
            half=half,
            max_batch=max_batch,
        )

    @abstractmethod
    def build(self, channels_last: bool) -> nn.Module:
        """The network, in fp32 on the CPU, taking (n, size, size, 3) uint8 chips."""

    def descriptors(self, chips: np.ndarray) -> np.ndarray:
        """The network's raw descriptors, (n, descriptor_size) float32, for (n, size, size, 3) uint8 RGB chips."""
        batch = validate_chips(chips, self.chip_size, self.align_hint)
        out = np.empty((len(batch), self.descriptor_size), dtype=np.float32)
        with torch.inference_mode(), self._fp32_precision():
            for start in range(0, len(batch), self.max_batch):
                chunk = torch.from_numpy(batch[start : start + self.max_batch]).to(self.device)
                out[start : start + len(chunk)] = self.model(chunk).float().cpu().numpy()
        return out

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """L2-normalised descriptors, (n, descriptor_size) float32: cosine similarity is then a dot product."""
        raw = self.descriptors(chips)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        return (raw / np.maximum(norms, np.finfo(np.float32).tiny)).astype(np.float32, copy=False)

    @contextmanager
    def _fp32_precision(self) -> Iterator[None]:
        """IEEE fp32 convolutions for the call: cuDNN's default TF32 drifts about 2e-4 from the reference."""
        if self.half or self.device.type != "cuda":
            yield
            return
        # torch sets `conv` on the module object it swaps in at import (CudnnModule); its stubs lack it.
        conv = torch.backends.cudnn.conv  # type: ignore[attr-defined]
        previous = conv.fp32_precision
        conv.fp32_precision = "ieee"
        try:
            yield
        finally:
            conv.fp32_precision = previous
