"""Model names used in pipeline files and weights metadata -> constructors."""

from __future__ import annotations

from torch import nn

from wsgcn_cli.errors import WsgcnError


def _semgcn(**kw):
    from wsgcn_cli.models.semgcn import SemGCN

    return SemGCN(**kw)


def _martinez(**kw):
    from wsgcn_cli.models.mlp import MartinezMLP

    return MartinezMLP(**kw)


def _representation(**kw):
    from wsgcn_cli.models.representation import PoseRepresentationNet

    return PoseRepresentationNet(**kw)


MODELS = {
    "semgcn_nonlocal": lambda **kw: _semgcn(non_local=True, **kw),
    "semgcn": lambda **kw: _semgcn(non_local=False, **kw),
    "martinez_mlp": _martinez,
    "pose_representation": _representation,  # the 2D stage, not a lifter
}


def build_from(table: dict, kind: str, name: str, options: dict) -> nn.Module:
    """``table[name](**options)``; WsgcnError naming ``kind`` for an unknown name or bad options."""
    try:
        factory = table[name]
    except KeyError:
        raise WsgcnError(f"unknown {kind} {name!r}; known: {', '.join(table)}")
    try:
        return factory(**options)
    except TypeError as e:
        raise WsgcnError(f"bad options for {kind} {name!r}: {e}")


def build_model(name: str, **options) -> nn.Module:
    """Construct the lifter model ``name`` with ``options`` (the pipeline's ``[model]`` table).

    Raises WsgcnError for an unknown name or options the model does not take.
    """
    return build_from(MODELS, "model", name, options)
