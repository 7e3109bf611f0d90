"""Model weights as safetensors files carrying their own metadata.

A weights file holds the model's tensors and, under the metadata key ``"wsgcn"``, a
JSON object describing what the tensors mean::

    {"model": "semgcn_nonlocal", "model_options": {...}, "layout": "h36m17",
     "codec": "root_scale", "output": "root-relative camera coordinates, metres",
     "trained_on": "...", "metrics": {...}, ...}

so that a pipeline that pairs the weights with another model, layout or codec is a
clear error rather than a silent wrong answer. Files are written to a temporary name
and renamed; they are read with ``safetensors`` only (no pickle).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.io.atomic import atomic_write

META_KEY = "wsgcn"


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save(path: str | Path, state_dict: dict[str, torch.Tensor], meta: dict) -> str:
    """Write ``state_dict`` and ``meta`` atomically; returns the file's sha256."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta, sort_keys=True)})
        os.chmod(tmp, 0o644)
    return sha256(path)


def load(path: str | Path, device: str = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """Read a weights file -> (state_dict, metadata).

    Raises WsgcnError if the file is missing, not safetensors, or has no wsgcn metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise WsgcnError(f"weights file not found: {path}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
        state = load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError) as e:
        raise WsgcnError(f"cannot read weights {path}: {e}")
    if raw is None:
        raise WsgcnError(f"weights {path} carry no '{META_KEY}' metadata (not a wsgcn file)")
    return state, json.loads(raw)
