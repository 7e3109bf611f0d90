import numpy as np
import pytest

from wsgcn_cli.angles import ANGLE_NAMES, joint_angles
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.io import posefile
from wsgcn_cli.io.opensim import MARKER_NAMES, write_mot, write_trc


def world_poses(t=12, seed=0):
    """(t, 17, 3) metres, y up: a standing-like skeleton with noise; frame 4 missing."""
    rng = np.random.default_rng(seed)
    base = np.array([[0, .95, 0], [-.12, .95, 0], [-.12, .5, 0], [-.12, .08, 0], [.12, .95, 0], [.12, .5, 0],
                     [.12, .08, 0], [0, 1.2, 0], [0, 1.45, 0], [0, 1.55, .02], [0, 1.7, 0], [.17, 1.45, 0],
                     [.17, 1.17, 0], [.17, .92, 0], [-.17, 1.45, 0], [-.17, 1.17, 0], [-.17, .92, 0]])
    w = base + rng.normal(scale=0.03, size=(t, 17, 3))
    w[4] = np.nan
    return w


def trc_rows(path):
    lines = path.read_text(encoding="utf-8").split("\n")
    return lines[:6], [ln.split("\t") for ln in lines[6:] if ln]


def test_trc_layout_and_values(tmp_path):
    w = world_poses()
    times = np.arange(12) / 25.0
    path = write_trc(tmp_path / "c.trc", w, times, 25.0)
    head, rows = trc_rows(path)
    assert head[0].split("\t") == ["PathFileType", "4", "(X/Y/Z)", "c.trc"]
    assert head[1].split("\t") == ["DataRate", "CameraRate", "NumFrames", "NumMarkers", "Units", "OrigDataRate",
                                   "OrigDataStartFrame", "OrigNumFrames"]
    assert head[2].split("\t") == ["25", "25", "12", "17", "mm", "25", "1", "12"]
    names = head[3].split("\t")
    assert names[:2] == ["Frame#", "Time"] and names[2::3] == list(MARKER_NAMES)
    assert head[4].split("\t")[2:5] == ["X1", "Y1", "Z1"] and head[4].split("\t")[-1] == "Z17"
    assert head[5] == "" and len(rows) == 12 and all(len(r) == 2 + 51 for r in rows)
    assert rows[0][0] == "1" and float(rows[3][1]) == pytest.approx(0.12)
    assert np.allclose(np.array(rows[7][2:], float).reshape(17, 3), w[7] * 1000, atol=1e-3)  # mm
    assert rows[4][2:] == ["NaN"] * 51
    assert "Neck_Nose" in MARKER_NAMES and not any("/" in n for n in MARKER_NAMES)


def test_mot_layout_values_and_missing_frames(tmp_path):
    w = world_poses()
    times = np.arange(12) / 25.0
    path = write_mot(tmp_path / "c.mot", w, times)
    lines = path.read_text(encoding="utf-8").split("\n")
    end = lines.index("endheader")
    assert lines[:end] == ["c", "version=1", "nRows=11", f"nColumns={len(ANGLE_NAMES) + 1}", "inDegrees=yes"]
    assert lines[end + 1].split("\t") == ["time"] + list(ANGLE_NAMES)
    rows = np.array([ln.split("\t") for ln in lines[end + 2:] if ln], float)
    assert rows.shape == (11, len(ANGLE_NAMES) + 1)
    assert 0.16 not in rows[:, 0] and rows[4, 0] == pytest.approx(0.2)  # frame 4 (NaN) left out
    want = np.stack(list(joint_angles(w).values()), axis=1)
    assert np.allclose(rows[:, 1:], np.delete(want, 4, axis=0), atol=1e-4)


def test_errors(tmp_path):
    w = world_poses()
    with pytest.raises(WsgcnError, match="17, 3"):
        write_trc(tmp_path / "a.trc", w[:, :16], np.arange(12.0), 25)
    with pytest.raises(WsgcnError, match="one time per frame"):
        write_mot(tmp_path / "a.mot", w, np.arange(5.0))
    with pytest.raises(WsgcnError, match="frame rate"):
        write_trc(tmp_path / "a.trc", w, np.arange(12.0), 0)
    with pytest.raises(WsgcnError, match="no frame"):
        write_mot(tmp_path / "a.mot", np.full((3, 17, 3), np.nan), np.arange(3.0))
    assert not list(tmp_path.iterdir())


def _posefile(world):
    t = len(world)
    return posefile.PoseFile(
        keypoints_2d=np.zeros((t, 17, 2)), scores=np.ones((t, 17)), keypoints_3d=world - world[:, :1],
        times=np.arange(t) / 30.0, fps=30.0, image_size=(640, 480), root_camera_m=np.zeros((t, 3)),
        keypoints_3d_world=world, camera_to_world=np.eye(4), foot_contact=np.zeros((t, 2), bool))


def test_posefile_formats(tmp_path):
    p = _posefile(world_poses())
    assert posefile.write(p, tmp_path / "c.wsgcn.trc").is_file()
    assert posefile.write(p, tmp_path / "c.wsgcn.mot").is_file()
    p.root_camera_m = p.keypoints_3d_world = p.camera_to_world = p.foot_contact = None
    for fmt in ("trc", "mot"):
        with pytest.raises(WsgcnError, match="world stage"):
            posefile.write(p, tmp_path / f"x.{fmt}")


@pytest.fixture
def opensim(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # opensim writes opensim.log into the working folder
    return pytest.importorskip("opensim")


def test_opensim_reads_trc(tmp_path, opensim):
    w = world_poses()
    path = write_trc(tmp_path / "c.trc", w, np.arange(12) / 25.0, 25.0)
    table = opensim.TimeSeriesTableVec3(str(path))
    assert table.getNumRows() == 12 and table.getNumColumns() == 17
    assert list(table.getColumnLabels()) == list(MARKER_NAMES)
    assert table.getTableMetaDataString("Units") == "mm"
    assert list(table.getIndependentColumn()) == pytest.approx(np.arange(12) / 25.0)
    for i in (0, 7):
        row = table.getRowAtIndex(i)
        got = np.array([[row[k].get(a) for a in range(3)] for k in range(17)])
        assert np.allclose(got, w[i] * 1000, atol=1e-3)
    assert np.isnan(table.getRowAtIndex(4)[0].get(1))
    markers = opensim.TRCFileAdapter().read(str(path))["markers"]
    assert markers.getNumRows() == 12 and markers.getNumColumns() == 17


def test_opensim_reads_mot(tmp_path, opensim):
    w = world_poses()
    path = write_mot(tmp_path / "c.mot", w, np.arange(12) / 25.0)
    table = opensim.TimeSeriesTable(str(path))
    assert table.getNumRows() == 11 and list(table.getColumnLabels()) == list(ANGLE_NAMES)
    assert table.getTableMetaDataString("inDegrees") == "yes"
    want = np.delete(np.stack(list(joint_angles(w).values()), axis=1), 4, axis=0)
    got = np.array([[table.getRowAtIndex(i)[k] for k in range(len(ANGLE_NAMES))] for i in range(11)])
    assert np.allclose(got, want, atol=1e-4)
    storage = opensim.Storage(str(path))  # the GUI's reader
    assert storage.getSize() == 11 and storage.isInDegrees()
    assert storage.getColumnLabels().getSize() == len(ANGLE_NAMES) + 1
