"""Every shipped pipeline file loads, and the weights it names are shipped."""

import pytest

from wsgcn_cli import pipeline
from wsgcn_cli.stages import Representation

SHIPPED = sorted(p.stem for p in pipeline.PIPELINE_DIR.glob("*.toml"))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_pipeline_loads_and_names_shipped_weights(name):
    spec = pipeline.load(name)
    assert spec["name"] == name
    if spec["kind"] != "lift":
        return
    Representation.from_spec(spec.get("representation", {}))
    named = [spec["lifter"]["weights"]]
    named += [spec[t]["weights"] for t in ("representation", "refiner") if spec.get(t, {}).get("weights")]
    for weights in named:
        assert pipeline.resolve_path(weights, spec).is_file(), weights
