"""Lift pipelines: pipeline files (:mod:`.spec`), the stages (:mod:`.stages`) and the
:class:`Pipeline` object that builds, checks and streams them (:mod:`.pipeline`).

``from wsgcn_cli import pipeline as pipelines`` gives the file helpers
(:func:`load`, :func:`find`, :func:`resolve_path`, :data:`ROOT`, :data:`PIPELINE_DIR`,
:data:`DEFAULT_LIFT`) and the objects (:class:`Pipeline`, :class:`FrameResult`,
:class:`Track`).
"""

from wsgcn_cli.pipeline.spec import DEFAULT_LIFT, PIPELINE_DIR, ROOT, Representation, find, load, resolve_path
from wsgcn_cli.pipeline.stages import FrameResult
from wsgcn_cli.pipeline.pipeline import Pipeline, Stream, Track

__all__ = ["DEFAULT_LIFT", "PIPELINE_DIR", "ROOT", "Representation", "find", "load", "resolve_path",
           "FrameResult", "Pipeline", "Stream", "Track"]
