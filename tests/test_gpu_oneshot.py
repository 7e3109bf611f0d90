"""The GPU one-shot (benchmarks/gpu_train_all.py) runs its every stage, tiny, on the CPU, without
the packages the GPU image lacks (mediapipe, PyAV, OpenCV, matplotlib)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wsgcn_cli.data import h36m

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (h36m.default_root() / h36m.FILE_3D).is_file(), reason="needs ../shared/data/h36m")
def test_gpu_one_shot_smoke_runs_every_stage_and_writes_weights_cards_curves(tmp_path):
    blocked = tmp_path / "blocked"  # the GPU image has none of these: importing them must fail there and here
    for name in ("mediapipe", "av", "cv2", "matplotlib"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} imported on the GPU path')\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{blocked}{os.pathsep}{REPO}"}
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_train_all.py"), str(out), "--smoke"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["stages"]) == {"gt", "det", "refiner", "weak", "wholebody"} and summary["smoke"]
    for stage, entry in summary["stages"].items():
        assert "error" not in entry and Path(entry["weights"]).is_file(), (stage, entry)
        assert (out / f"train_curve_{Path(entry['weights']).stem}.json").is_file()
    for stage in ("gt", "det", "weak"):
        assert Path(summary["stages"][stage]["weights"]).with_suffix(".md").is_file()
        assert summary["stages"][stage]["h36m"]["sh"]["frames"] > 0
    assert Path(summary["stages"]["wholebody"]["weights"]).with_suffix(".md").is_file()
    assert summary["stages"]["wholebody"]["wholebody"]["composite"]["mpjpe_mm"] > 0
