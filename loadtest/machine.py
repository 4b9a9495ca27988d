"""What a benchmark ran on, printed with its figures so that runs can be compared."""

import os
import platform
import resource

import torch


def describe_machine() -> str:
    """One line: CPU count, torch threads, and the GPU if one is used."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}"
        f" ({torch.get_num_threads()} threads), {gpu}, Python {platform.python_version()}"
    )


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
