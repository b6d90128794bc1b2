"""Shared helpers for the training scripts: device setup, data windows, checkpoints."""
import math, os, time

import numpy as np
import torch


def setup_device(name="auto", threads=None):
    if threads:
        torch.set_num_threads(threads)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu" and "OPENBLAS_CORETYPE" not in os.environ:
        print("warning: OPENBLAS_CORETYPE is unset; on this VM OpenBLAS may fall back to slow "
              "kernels (see README, 'Your own model and heads')", flush=True)
    if name == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return torch.device(name)


def autocast(device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def load_tokens(path):
    return np.memmap(path, dtype=np.uint16, mode="r")


def random_windows(tokens, batch, length, rng):
    """[batch, length] int64 windows at random offsets."""
    starts = rng.integers(0, len(tokens) - length - 1, size=batch)
    return torch.from_numpy(np.stack([tokens[s:s + length] for s in starts]).astype(np.int64))


def lr_at(progress, peak, warmup=0.02, floor=0.1):
    """Linear warm-up then cosine decay to floor*peak; progress in [0,1] (time- or token-based)."""
    if progress < warmup:
        return peak * progress / warmup
    p = min(1.0, (progress - warmup) / (1 - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


def save_atomic(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Clock:
    """Wall time that survives resumption: elapsed = previous runs + this run."""

    def __init__(self, previous=0.0):
        self.start, self.previous = time.time(), previous

    def elapsed(self):
        return self.previous + time.time() - self.start
