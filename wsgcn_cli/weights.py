"""Model weights as safetensors files carrying their own metadata; the one loader of models.

A weights file holds the model's tensors and, under the metadata key ``"wsgcn"``, a
JSON object describing what the tensors mean::

    {"kind": "lifter", "model": "semgcn_nonlocal", "model_options": {...},
     "layout": "h36m17", "codec": "root_scale",
     "output": "root-relative camera coordinates, metres", "trained_on": "...", ...}

so that a pipeline that pairs the weights with another model, layout or codec is a
clear error rather than a silent wrong answer. The ``kind`` says which stage the
weights belong to (:data:`KINDS`: ``"lifter"``, ``"pose2d"`` the 2D pose
representation network, ``"refiner"`` the temporal refiner); files written before it
existed are recognised by their ``model`` name (:func:`wsgcn_cli.models.registry.kind_of`).

:func:`load_model` is the one way from a file to a model: every loader (``Lifter``,
``TemporalRefiner``, ``RepresentationModel``) goes through it. Files are written to a
temporary name and renamed (:func:`save`); they are read with ``safetensors`` only,
never with pickle. Every problem with a file (missing, empty, truncated, a pickled
PyTorch file, no or bad metadata, weights of another kind or layout, tensors that do
not fit the model) is a one-line :class:`~wsgcn_cli.errors.WsgcnError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes, save_file
from torch import nn

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.io.atomic import atomic_write
from wsgcn_cli.models import registry

META_KEY = "wsgcn"

#: Kinds of weights, by the stage that uses them, and how errors name them.
KINDS = {"lifter": "lifter", "pose2d": "2D pose representation network", "refiner": "refiner"}

#: A safetensors header is at most this long (the library's own limit, 100 MB).
_MAX_HEADER = 100_000_000


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available else CPU; ``"cpu"``; ``"cuda"`` (or ``"cuda:N"``).

    Raises WsgcnError for CUDA without a CUDA device, or an unknown device name.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.split(":")[0] == "cuda" and not torch.cuda.is_available():
        raise WsgcnError("--device cuda asked for, but PyTorch sees no CUDA device")
    if device.split(":")[0] not in ("cpu", "cuda"):
        raise WsgcnError(f"unknown device {device!r}; use auto, cpu or cuda")
    return torch.device(device)


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save(path: str | Path, state_dict: dict[str, torch.Tensor], meta: dict) -> str:
    """Write ``state_dict`` and ``meta`` atomically; returns the file's sha256.

    ``meta`` gets a ``"kind"`` key (:data:`KINDS`) from its ``"model"`` name when it has
    none and the model is in the registry.

    Raises:
        ValueError: ``meta["kind"]`` contradicts the kind of ``meta["model"]``.
        WsgcnError: the file cannot be written (see :mod:`wsgcn_cli.io.atomic`).
    """
    inferred = registry.kind_of(meta.get("model"))
    if "kind" in meta and inferred is not None and meta["kind"] != inferred:
        raise ValueError(f"meta kind {meta['kind']!r} but model {meta['model']!r} is a {inferred}")
    if "kind" not in meta and inferred is not None:
        meta = {"kind": inferred, **meta}
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta, sort_keys=True)})
        os.chmod(tmp, 0o644)
    return sha256(path)


def _is_pickle(data: bytes) -> bool:
    """torch.save's zip container, or a bare (legacy) pickle stream."""
    return data[:4] == b"PK\x03\x04" or (data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"))


def _header(data: bytes, path: Path) -> dict:
    """The safetensors JSON header of ``data`` (checked against the file's length)."""
    if not data:
        raise WsgcnError(f"weights {path} are an empty file")
    if _is_pickle(data):
        raise WsgcnError(f"weights {path} are a pickled PyTorch file (torch.save), not safetensors; "
                         "wsgcn reads safetensors only (convert with safetensors.torch.save_file)")
    if len(data) < 8:
        raise WsgcnError(f"weights {path} are too short for a safetensors file ({len(data)} bytes): "
                         "truncated or not a weights file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER or data[8:9] not in (b"{", b""):
        raise WsgcnError(f"weights {path} are not a safetensors file")
    if 8 + n > len(data):
        raise WsgcnError(f"weights {path} are truncated ({len(data)} bytes, the header alone needs {8 + n})")
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WsgcnError(f"weights {path} are not a safetensors file (unreadable header)") from None
    if not isinstance(header, dict):
        raise WsgcnError(f"weights {path} are not a safetensors file (bad header)")
    ends = [t.get("data_offsets", [0, 0])[1] for k, t in header.items() if k != "__metadata__" and isinstance(t, dict)]
    if ends and max(ends) > len(data) - 8 - n:
        raise WsgcnError(f"weights {path} are truncated ({len(data)} bytes, the tensors need {8 + n + max(ends)})")
    return header


def read(path: str | Path, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict, str]:
    """Read a weights file once -> (state_dict, metadata, sha256 of the file).

    Tensors are put on ``device``; the metadata is the ``"wsgcn"`` JSON object.

    Raises:
        WsgcnError: a missing or unreadable file, an empty or truncated one, a pickled
            PyTorch file, anything else that is not safetensors, no (or malformed)
            wsgcn metadata, or floating-point tensors holding NaN or infinity (damage).
    """
    path = Path(path)
    if not path.is_file():
        raise WsgcnError(f"weights file not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise WsgcnError(f"cannot read weights {path}: {e.strerror}") from None
    header = _header(data, path)
    raw = (header.get("__metadata__") or {}).get(META_KEY) if isinstance(header.get("__metadata__"), dict) else None
    if raw is None:
        raise WsgcnError(f"weights {path} carry no '{META_KEY}' metadata (not a wsgcn file)")
    try:
        meta = json.loads(raw)
    except (TypeError, json.JSONDecodeError):
        raise WsgcnError(f"weights {path}: the '{META_KEY}' metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise WsgcnError(f"weights {path}: the '{META_KEY}' metadata is not a JSON object")
    try:
        state = load_bytes(data)
    except (SafetensorError, ValueError, RuntimeError, OverflowError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise WsgcnError(f"cannot read weights {path}: {first}") from None
    bad = next((k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise WsgcnError(f"weights {path} are damaged: tensor {bad!r} holds NaN or infinite values")
    if str(device) != "cpu":
        state = {k: v.to(device) for k, v in state.items()}
    return state, meta, hashlib.sha256(data).hexdigest()


def load(path: str | Path, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """Read a weights file -> (state_dict, metadata); see :func:`read` for the errors raised."""
    state, meta, _ = read(path, device)
    return state, meta


def kind_of(meta: dict, path: str | Path = "") -> str:
    """The kind (:data:`KINDS`) of weights with metadata ``meta``: its ``"kind"`` key, or
    the kind of its ``"model"`` in the registry for files written before the key existed.

    Raises WsgcnError for an unknown kind or model, or a kind that contradicts the model.
    """
    model = meta.get("model")
    if not isinstance(model, str):
        raise WsgcnError(f"weights {path}: the metadata name no model")
    by_model = registry.kind_of(model)
    kind = meta.get("kind", by_model)
    if kind is None:
        raise WsgcnError(f"weights {path} hold an unknown model {model!r}; known: {', '.join(registry.MODELS)}")
    if kind not in KINDS:
        raise WsgcnError(f"weights {path} are of unknown kind {kind!r}; known: {', '.join(KINDS)}")
    if by_model is not None and by_model != kind:
        raise WsgcnError(f"weights {path} say kind {kind!r} but hold model {model!r}, a {KINDS[by_model]}")
    return kind


def load_model(path: str | Path, kind: str, device: str | torch.device = "cpu",
               layout: str | None = None) -> tuple[nn.Module, dict, str]:
    """Build the model a weights file names and load its tensors: the one loader.

    Args:
        path: a ``.safetensors`` file written by :func:`save`.
        kind: what the caller needs, one of :data:`KINDS` (``"lifter"``, ``"pose2d"``,
            ``"refiner"``).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or a torch device (see :func:`resolve_device`).
        layout: if given, the keypoint layout the weights must be for (e.g. ``"h36m17"``).
    Returns:
        ``(model, meta, sha256)``: the model in eval mode on ``device``, the weights'
        metadata (dict) and the hex SHA-256 of the file (read once).
    Raises:
        WsgcnError: everything :func:`read` raises; weights of another kind (e.g. a 2D
            network used as a lifter), another layout, an unknown model or options it
            does not take, or tensors that do not fit the model.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    dev = resolve_device(device)
    path = Path(path)
    state, meta, digest = read(path)
    found = kind_of(meta, path)
    if found != kind:
        raise WsgcnError(f"weights {path} hold a {KINDS[found]} ({meta['model']!r}), not a {KINDS[kind]}")
    if layout is not None and meta.get("layout") != layout:
        raise WsgcnError(f"weights {path} are for layout {meta.get('layout')!r}, not {layout!r}")
    options = meta.get("model_options", {})
    if not isinstance(options, dict):
        raise WsgcnError(f"weights {path}: model_options must be a JSON object, got {options!r}")
    try:
        model = registry.build(meta["model"], options, kind=kind)
    except WsgcnError as e:
        raise WsgcnError(f"weights {path}: {e}") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        detail = next((line.strip() for line in str(e).splitlines()[1:] if line.strip()), "")
        if len(detail) > 160:
            detail = detail[:157] + "..."
        raise WsgcnError(f"weights {path} do not fit {KINDS[kind]} {meta['model']!r}: {first} {detail}") from None
    return model.to(dev).eval(), meta, digest
