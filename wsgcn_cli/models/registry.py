"""Model names used in pipeline files and weights metadata -> kind and constructor.

The one table of every network wsgcn builds by name. Each name has a *kind*, the stage
its weights belong to (``"lifter"``: 2D -> 3D; ``"pose2d"``: the 2D pose representation
network; ``"refiner"``: the temporal refiner), which :func:`wsgcn_cli.weights.load_model`
checks against what the caller asked for. This module imports layers only: the model
modules never import it back.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from torch import nn

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.models.mlp import MartinezMLP
from wsgcn_cli.models.pose2d_net import PoseRepresentationNet
from wsgcn_cli.models.refiner_net import LSTMRefiner
from wsgcn_cli.models.semgan import SemGAN
from wsgcn_cli.models.semgcn import SemGCN


class Entry(NamedTuple):
    """A registered model: its ``kind`` and ``factory(**options) -> nn.Module``."""

    kind: str
    factory: Callable[..., nn.Module]


MODELS: dict[str, Entry] = {
    "semgcn_nonlocal": Entry("lifter", lambda **kw: SemGCN(non_local=True, **kw)),
    "semgcn": Entry("lifter", lambda **kw: SemGCN(non_local=False, **kw)),
    "martinez_mlp": Entry("lifter", MartinezMLP),
    "semgan": Entry("lifter", SemGAN),  # COCO-WholeBody-133 (models/semgan.py)
    "pose_representation": Entry("pose2d", PoseRepresentationNet),
    "lstm_refiner": Entry("refiner", LSTMRefiner),
}

#: How errors name a kind ("unknown refiner 'x'").
_NOUN = {"lifter": "model", "pose2d": "2D network", "refiner": "refiner"}


def kind_of(name) -> str | None:
    """The kind of the model ``name`` (``"lifter"``, ``"pose2d"``, ``"refiner"``), None if unknown."""
    entry = MODELS.get(name) if isinstance(name, str) else None
    return entry.kind if entry is not None else None


def names(kind: str) -> tuple[str, ...]:
    """The registered model names of one kind."""
    return tuple(n for n, e in MODELS.items() if e.kind == kind)


def build(name: str, options: dict | None = None, kind: str | None = None) -> nn.Module:
    """Construct the model ``name`` with ``options``; with ``kind``, only a model of that kind.

    Raises WsgcnError for an unknown name (or one of another kind) or options the
    model does not take.
    """
    known = names(kind) if kind is not None else tuple(MODELS)
    noun = _NOUN.get(kind, "model")
    if name not in known:
        raise WsgcnError(f"unknown {noun} {name!r}; known: {', '.join(known)}")
    try:
        return MODELS[name].factory(**(options or {}))
    except TypeError as e:
        raise WsgcnError(f"bad options for {noun} {name!r}: {e}") from None


def build_model(name: str, **options) -> nn.Module:
    """Construct the model ``name`` with ``options`` (a train pipeline's ``[model]`` table):
    a lifter, or any other registered network (``pose_representation``, ``lstm_refiner``).

    Raises WsgcnError for an unknown name or options the model does not take.
    """
    return build(name, options)
