"""Small pieces shared by the training loops (supervised, weak, refiner, finetune)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np
import torch

from wsgcn_cli import codec, weights
from wsgcn_cli.io.atomic import atomic_write


def encode_h36m(kp: np.ndarray, data, mode: str) -> np.ndarray:
    """Lifter inputs (N, 17, 2) from Human3.6M pixel keypoints, per-sample image sizes."""
    return codec.encode_2d(kp, mode, data.image_size[:, 0, None, None].astype(np.float32),
                           data.image_size[:, 1, None, None].astype(np.float32))


def save_checkpoint(obj: dict, path: str | Path) -> None:
    """``torch.save`` a checkpoint atomically (read it back with ``weights_only=True``)."""
    with atomic_write(path) as tmp:
        torch.save(obj, tmp)


def machine_description(device: torch.device) -> str:
    """``"x86_64 2 cores, CPU"`` or ``"... , NVIDIA H100 ..."``: for model cards."""
    accel = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    return f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, {accel}".replace("  ", " ")


def validate(model: torch.nn.Module, codec_mode: str, device, data_root, val) -> tuple[float, float]:
    """MPJPE (mm) of ``model`` on preloaded validation samples, GT and SH 2D, no flip test."""
    from wsgcn_cli.evaluate import evaluate
    from wsgcn_cli.lifter import Lifter

    lifter = Lifter(model, codec_mode, flip_test=False, device=device)
    return (evaluate(lifter, root=data_root, source="gt", data=val)["mpjpe_mm"],
            evaluate(lifter, root=data_root, source="sh", data=val)["mpjpe_mm"])


def save_trained(out: Path, model: torch.nn.Module, meta: dict, log) -> dict:
    """Write the trained weights with their metadata; returns the training summary dict."""
    model.eval()
    digest = weights.save(out, model.state_dict(), meta)
    log(f"wrote {out} (sha256 {digest[:12]}…), {meta['epochs']} epochs in {meta['wall_time_s'] / 60:.1f} min")
    return {"weights": str(out), "sha256": digest, "meta": meta}


def resume(ckpt_path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, keys: tuple, log,
           ck: dict | None = None) -> tuple[int, float, list[dict]]:
    """Load a checkpoint written by :func:`save_checkpoint` into ``model`` and ``opt``, if
    one exists (or use ``ck``, already loaded); returns (epochs done, wall seconds so far,
    history as a list of dicts with ``keys``); (0, 0.0, []) without a checkpoint."""
    if ck is None and Path(ckpt_path).is_file():
        ck = torch.load(ckpt_path, map_location=next(model.parameters()).device, weights_only=True)
    if ck is None:
        return 0, 0.0, []
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optim"])
    history = [dict(zip(keys, h)) for h in ck["history"].tolist()]
    log(f"resumed from {ckpt_path} at epoch {int(ck['epoch'])}")
    return int(ck["epoch"]), float(ck["wall_s"]), history
