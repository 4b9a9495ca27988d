"""`FaceEmbedder`: aligned face chips in, 128-d face descriptors out.

The descriptors are dlib's (`face_recognition_model_v1`), computed by a torch port of its
ResNet so that whole batches run at once; they match dlib's own to about 1e-6. Matching
compares L2-normalised embeddings (`embed`); `descriptors` gives dlib's raw vectors, for
comparison with descriptors made by dlib or face_recognition.
"""

from torch import nn

from cluster.vision.chip_embedder import ChipEmbedder
from cluster.vision.dlib_dat import load_face_resnet
from cluster.vision.dlib_resnet import DlibFaceResNet
from cluster.vision.face import PRIMARY_MODEL

CHIP_SIZE = 150
"""Side of the square RGB chips the network takes (dlib's `get_face_chip` size)."""

DESCRIPTOR_SIZE = 128


class FaceEmbedder(ChipEmbedder):
    """dlib's face recognition ResNet (see `ChipEmbedder` for the settings).

    half gives fp16 on cuda (about 4e-4 from dlib's descriptors, against about 4e-7 in fp32, where
    cuDNN is told to convolve in IEEE fp32 rather than TF32); channels_last convolves 1.2-1.5x
    faster on CPU (measured on 2 AVX-512 cores). `descriptors` are dlib's raw (unnormalised)
    vectors, for comparison with descriptors made by dlib or face_recognition.
    """

    name = PRIMARY_MODEL
    chip_size = CHIP_SIZE
    descriptor_size = DESCRIPTOR_SIZE
    align_hint = "align the detected faces with the aligner (FaceAligner.align) first, which returns such chips"

    def build(self, channels_last: bool) -> nn.Module:
        return DlibFaceResNet(load_face_resnet(), channels_last=channels_last)
