"""Pipeline files: the one place that pairs a model with its weights and its 2D layout.

This module reads the files into checked tables; :class:`wsgcn_cli.pipeline.Pipeline`
builds the stages they describe.

A pipeline is a TOML file in ``pipelines/`` (read with ``tomllib``). A *lift* pipeline
has the tables ``[detector]``, ``[representation]``, ``[lifter]`` and optionally
``[refiner]``, ``[smoothing]`` (:class:`wsgcn_cli.smoothing.Smoothing`), ``[bones]``
(:class:`wsgcn_cli.bones.BoneOptions`), ``[world]`` (:class:`wsgcn_cli.world.WorldOptions`)
and ``[render]``; a *train* pipeline has ``[model]``, ``[codec]``, ``[data]`` and
``[train]``. Relative paths inside a pipeline (weights, outputs) are resolved against
the repository root (the folder holding ``pipelines/``).

``load("body17")`` finds ``pipelines/body17.toml``; a path to a ``.toml`` file works too.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.options import from_table

ROOT = Path(__file__).resolve().parents[2]
PIPELINE_DIR = ROOT / "pipelines"
DEFAULT_LIFT = "body17"


def find(name_or_path: str | Path) -> Path:
    """Path of a pipeline given its name (``body17``) or a path to a TOML file."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise WsgcnError(f"pipeline file not found: {p}")
        return p
    candidate = PIPELINE_DIR / f"{name_or_path}.toml"
    if candidate.is_file():
        return candidate
    known = ", ".join(sorted(x.stem for x in PIPELINE_DIR.glob("*.toml")))
    raise WsgcnError(f"unknown pipeline {str(name_or_path)!r}; known: {known}")


def resolve_path(value: str | Path, spec: dict | None = None) -> Path:
    """A path from a pipeline: absolute, or relative to the repository root.

    With ``spec`` (a loaded pipeline), a relative path that exists beside the pipeline
    file or in the working folder is taken from there first, so a user's own pipeline
    can name weights next to it.
    """
    if not isinstance(value, (str, Path)):
        where = f" in pipeline {spec['path']}" if spec is not None else ""
        raise WsgcnError(f"a path{where} must be a string, got {value!r}")
    p = Path(value)
    if p.is_absolute():
        return p
    if spec is not None:
        for base in (Path(spec["path"]).parent, Path.cwd()):
            if (base / p).exists():
                return base / p
    return ROOT / p


def load(name_or_path: str | Path, kind: str | None = None) -> dict:
    """Read and check a pipeline file -> dict (with ``"path"`` and ``"kind"`` added).

    ``kind`` ``"lift"`` or ``"train"`` asks for that kind of pipeline. Raises WsgcnError
    for a missing file, invalid TOML, missing tables or a table given as a plain value.
    """
    path = find(name_or_path)
    try:
        spec = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise WsgcnError(f"pipeline {path} is not valid TOML: {e}")
    found = "train" if "train" in spec else "lift"
    required = {"lift": ("lifter",), "train": ("model", "codec", "data", "train")}[found]
    if spec.get("task") == "representation":  # 2D in, 2D out: the network normalises its own input
        required = ("model", "data", "train")
    missing = [t for t in required if t not in spec]
    if missing:
        raise WsgcnError(f"pipeline {path} lacks the table(s) {', '.join('[' + m + ']' for m in missing)}")
    tables = ("detector", "representation", "lifter", "refiner", "render", "smoothing", "bones", "world") \
        if found == "lift" else required
    not_tables = [t for t in tables if t in spec and not isinstance(spec[t], dict)]
    if not_tables:
        raise WsgcnError(f"pipeline {path}: {', '.join(not_tables)} must be a table ([{not_tables[0]}] ...)")
    if kind is not None and kind != found:
        raise WsgcnError(f"pipeline {path} is a {found} pipeline, not a {kind} pipeline")
    spec.setdefault("name", path.stem)
    spec["path"] = str(path)
    spec["kind"] = found
    return spec


@dataclass
class Representation:
    """A lift pipeline's ``[representation]`` table: the 2D stage's options.

    Attributes:
        kind: ``"geometric"`` (the layout mapping and gap filling alone) or ``"network"``
            (then the 2D pose representation network cleans and completes every frame
            after gap filling, see :mod:`wsgcn_cli.pose2d.network`).
        adjust: move detector landmarks towards Human3.6M's joint definitions
            (:func:`wsgcn_cli.pose2d.mapping.to_h36m17`).
        max_gap_frames: longest run of missing frames filled by interpolation.
        min_score: keypoints scoring below this count as missing (0: only undetected).
        weights: the network's weights (``kind = "network"``), relative to the
            repository or the pipeline file.
        detected_weight: in [0, 1]; for joints that were detected (or gap-filled), the
            output is ``detected_weight * input + (1 - detected_weight) * network``;
            missing joints always take the network's. 0: the network's output alone.
    """

    kind: str = "geometric"
    adjust: bool = True
    max_gap_frames: int = 10
    min_score: float = 0.0
    weights: str = ""
    detected_weight: float = 0.0

    @classmethod
    def from_spec(cls, table: dict) -> "Representation":
        """From a pipeline's ``[representation]`` table; WsgcnError for bad entries."""
        rep = from_table(cls, table, "representation")
        if rep.kind not in ("geometric", "network"):
            raise WsgcnError(f"unknown representation kind {rep.kind!r}; known: geometric, network")
        if not 0.0 <= rep.detected_weight <= 1.0:
            raise WsgcnError(f"[representation] detected_weight must be within [0, 1], got {rep.detected_weight}")
        if rep.kind == "network" and not rep.weights:
            raise WsgcnError('representation kind "network" needs its weights (weights = "...")')
        if not isinstance(rep.max_gap_frames, int) or rep.max_gap_frames < 0:
            raise WsgcnError(f"[representation] max_gap_frames must be a whole number >= 0, got {rep.max_gap_frames!r}")
        return rep
