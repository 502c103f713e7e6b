"""Where a fit runs and in what precision: the device and bfloat16 where the hardware has it."""

from __future__ import annotations

import torch

PRECISIONS = ("fp32", "bf16")
def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` is bfloat16 where the hardware computes it natively (recent CUDA GPUs; CPUs with
    AVX-512 BF16 or AMX), where it roughly halves the time of a step; float32 elsewhere."""
    if name == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        if device.type == "cpu":
            native = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()
            return "bf16" if native else "fp32"
        return "fp32"
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; choose auto, {', '.join(PRECISIONS)}")
    return name


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is visible; use --device auto or cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("--device mps: Apple MPS is not available here; use --device auto or cpu")
    if name not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {name!r}; choose auto, cpu, cuda or mps")
    return torch.device(name)
