"""``wsgcn lift`` on bad inputs that the tests make themselves: never a traceback, never a stray file.

Every case is built in its own ``tmp_path`` from a 10-frame cut of the bundled clip
(``samples/sports2d_clip.mp4``, cut and downscaled with PyAV once per module) and small
files: damaged videos (truncated at several points, bytes flipped, blocks zeroed),
random bytes, a text file and an audio-only file named ``.mp4``, bad images, empty
folders and folders of non-images; weights that are truncated, pickled, empty, damaged
or of another kind, named in a user pipeline (a copy of ``pipelines/body17.toml``);
malformed pipeline TOML; malformed ``--keypoints`` files (npz and MMPose JSON).

Each runs through the real command line, ``wsgcn_cli.cli.main`` in this process (fast:
torch and the weights are imported once; an exception escaping ``main`` is what a user
would see as a traceback, and fails the case), and a few through ``python -m
wsgcn_cli`` in a subprocess. The contract, for every case: either exit 0 with complete
outputs (one pose file, whose arrays agree in length, and nothing else), or exit 1 with
exactly one stderr line starting ``error: `` and no ``Traceback``, no output folder and
no new file of any kind (no ``.partial`` temporary left behind). Detection runs only
where the video itself is the point; elsewhere ``--keypoints`` skips it. All with
``--no-video`` (the overlay encoder has tests of its own).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "sports2d_clip.mp4"
WEIGHTS = REPO / "weights"
LIFTER = WEIGHTS / "semgcn_nl_h36m_det2d.safetensors"
FRAMES, WIDTH, HEIGHT, FPS = 10, 320, 180, 30

# H36M-17 standing pose in pixels of a 320x180 frame (pelvis, right leg, left leg, spine,
# thorax, neck/nose, head, left arm, right arm), and COCO-17 (nose, eyes, ears,
# shoulders, elbows, wrists, hips, knees, ankles; left before right).
H36M_POSE = [[160, 100], [150, 100], [150, 130], [150, 160], [170, 100], [170, 130], [170, 160], [160, 80],
             [160, 60], [160, 52], [160, 42], [175, 62], [182, 80], [185, 98], [145, 62], [138, 80], [135, 98]]
COCO_POSE = [[160, 50], [163, 47], [157, 47], [167, 49], [153, 49], [175, 62], [145, 62], [182, 80], [138, 80],
             [185, 98], [135, 98], [170, 100], [150, 100], [170, 130], [150, 130], [170, 160], [150, 160]]


# ----------------------------------------------------------------------------- assets


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Shared good inputs: a 10-frame H.264 clip (moov atom first, so that a truncated
    file still decodes its first frames), an audio-only mp4, a PNG frame, and valid
    keypoint files for the clip (wsgcn npz, H36M-17; MMPose JSON, COCO-17)."""
    import av
    import cv2

    d = tmp_path_factory.mktemp("assets")
    clip = d / "clip10.mp4"
    with av.open(str(SAMPLE)) as src, av.open(str(clip), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            if i == FRAMES:
                break
            if i == 0:
                cv2.imwrite(str(d / "frame.png"), cv2.resize(frame.to_ndarray(format="bgr24"), (WIDTH, HEIGHT)))
            small = frame.reformat(width=WIDTH, height=HEIGHT, format="yuv420p")
            for packet in stream.encode(small):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)

    audio = d / "audio.mp4"
    with av.open(str(audio), "w") as out:
        stream = out.add_stream("aac", rate=44100)
        stream.layout = "mono"
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(22050) / 44100)).astype(np.float32)[None]
        for i in range(0, tone.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, i : i + 1024]), format="fltp",
                                               layout="mono")
            frame.sample_rate = 44100
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)

    rng = np.random.default_rng(0)
    xy = (np.float32(H36M_POSE)[None] + rng.normal(0, 0.5, (FRAMES, 17, 2))).astype(np.float32)
    kp = d / "kp.npz"
    np.savez(kp, **npz_arrays(xy))
    coco = [{"frame_id": i, "instances": [{"keypoints": (np.float32(COCO_POSE) + i * 0.3).tolist(),
                                           "keypoint_scores": [0.9] * 17, "bbox": [[130, 40, 190, 165]],
                                           "bbox_score": 0.95}]} for i in range(FRAMES)]
    (d / "kp.json").write_text(json.dumps(coco))
    return d


def npz_arrays(xy, **changes) -> dict:
    """The arrays of a wsgcn 2D keypoint npz for (T, 17, 2) pixels ``xy``, with ``changes``."""
    t = len(xy)
    arrays = {"keypoints_2d": xy, "scores": np.full(xy.shape[:2], 0.9, np.float32),
              "times": np.arange(t) / FPS, "fps": np.float64(FPS), "image_size": np.array([WIDTH, HEIGHT]),
              "layout": np.array("h36m17")}
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


# ----------------------------------------------------------------------------- running


@dataclass
class Run:
    code: int | str
    stdout: str
    stderr: str


def run_in_process(args, capsys, cwd: Path) -> Run:
    """``wsgcn lift ARGS`` through ``wsgcn_cli.cli.main`` in the folder ``cwd``; an exception
    escaping it is reported as the traceback a user would have seen (code ``"traceback"``)."""
    from wsgcn_cli import cli

    capsys.readouterr()
    argv, sys.argv = sys.argv, ["wsgcn", "lift", *map(str, args)]
    home = os.getcwd()
    os.chdir(cwd)
    code: int | str
    try:
        cli.main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - exactly what must never reach a user
        buf = io.StringIO()
        traceback.print_exc(file=buf)
        code = "traceback"
        print(buf.getvalue(), file=sys.stderr)
    finally:
        sys.argv = argv
        os.chdir(home)
    out, err = capsys.readouterr()
    return Run(code, out, err)


def run_subprocess(args, cwd) -> Run:
    r = subprocess.run([sys.executable, "-m", "wsgcn_cli", "lift", *map(str, args)], capture_output=True,
                       text=True, cwd=cwd, timeout=300)
    return Run(r.returncode, r.stdout, r.stderr)


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


def check(run: Run, before: set[Path], case_dir: Path, out: Path, expect: str, words=()) -> None:
    """The contract: exit 0 with one complete pose file and nothing else new, or exit 1
    with one ``error:`` line, no traceback, no output folder and nothing new at all."""
    assert "Traceback" not in run.stderr and "Exception in thread" not in run.stderr, run.stderr[-3000:]
    assert run.code in (0, 1), (run.code, run.stderr[-3000:])
    new = files_under(case_dir) - before
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    if run.code == 0:
        assert expect in ("ok", "either"), f"expected an error, got exit 0 ({sorted(map(str, new))})"
        assert not errors, run.stderr
        assert len(new) == 1, sorted(map(str, new))
        (pose,) = new
        assert pose.parent == out and pose.name.endswith(".wsgcn.npz"), pose
        with np.load(pose) as z:
            t = len(z["times"])
            assert t >= 1
            assert z["keypoints_3d"].shape == (t, 17, 3) and z["keypoints_2d"].shape == (t, 17, 2)
            assert z["scores"].shape == (t, 17) and z["missing"].shape == (t,)
            assert np.isfinite(z["keypoints_3d"][~z["missing"]]).all()
    else:
        assert expect in ("error", "either"), f"expected success, got: {run.stderr.strip()[-2000:]}"
        assert len(errors) == 1, run.stderr
        for w in words:
            assert w in errors[0], errors[0]
        assert not new, f"stray files: {sorted(map(str, new))}"
        assert not out.exists(), f"{out} left behind: {sorted(p.name for p in out.rglob('*'))}"


# ----------------------------------------------------------------------------- cases

#: Cases that fail today outside this test's reach, with the module to fix: each is
#: ``xfail(strict=False)``, so it passes (XPASS) once fixed; then drop it from here.
XFAIL: dict = {}  # case name -> reason, for known failures

def cases(table: dict) -> list:
    return [pytest.param(n, marks=pytest.mark.xfail(strict=False, reason=XFAIL[n])) if n in XFAIL else n
            for n in table]


def _damage(data: bytes, how: str, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    b = bytearray(data)
    kind, _, arg = how.partition(":")
    if kind == "cut":
        return bytes(b[: int(float(arg) * len(b))] if "." in arg else b[: int(arg)])
    if kind == "flip":  # flip N random bytes, anywhere after the first 64
        for i in rng.integers(64, len(b), int(arg)):
            b[i] ^= 0xFF
        return bytes(b)
    if kind == "zero":  # zero 4 KiB at a fraction of the file
        at = int(float(arg) * len(b))
        b[at : at + 4096] = bytes(len(b[at : at + 4096]))
        return bytes(b)
    raise ValueError(how)


VIDEO_CASES = {
    # name: (how the input is made, expected outcome)
    "clip intact (control)": ("clip", "either"),
    "video truncated to 64 bytes": ("clip cut:64", "error"),
    "video truncated to 1 KiB": ("clip cut:1024", "error"),
    "video truncated to 4 KiB": ("clip cut:4096", "either"),
    "video truncated at 25 %": ("clip cut:0.25", "either"),
    "video truncated at 50 %": ("clip cut:0.5", "either"),
    "video truncated at 90 %": ("clip cut:0.9", "either"),
    "video one byte short": ("clip cut:-1", "either"),
    "video with 10 bytes flipped": ("clip flip:10", "either"),
    "video with 200 bytes flipped": ("clip flip:200", "either"),
    "video with 2000 bytes flipped": ("clip flip:2000", "either"),
    "video with its header zeroed": ("clip zero:0.0", "error"),
    "video with a block zeroed at 30 %": ("clip zero:0.3", "either"),
    "video with a block zeroed at 80 %": ("clip zero:0.8", "either"),
    "random bytes named .mp4": ("random .mp4", "error"),
    "text file named .mp4": ("text .mp4", "error"),
    "empty file named .mp4": ("empty .mp4", "error"),
    "audio-only mp4": ("audio", "error"),
    "random bytes named .png": ("random .png", "error"),
    "truncated png": ("png cut:0.3", "either"),
    "empty folder": ("folder empty", "error"),
    "folder of non-images": ("folder text", "error"),
    "folder of images named .jpg that are text": ("folder fakejpg", "error"),
    "folder with a good frame and a broken one": ("folder mixed", "either"),
    "input that does not exist": ("missing", "error"),
}


def make_input(spec: str, assets: Path, d: Path, seed: int) -> Path:
    kind, _, arg = spec.partition(" ")
    rng = np.random.default_rng(seed)
    if kind == "clip":
        data = (assets / "clip10.mp4").read_bytes()
        if arg.startswith("cut:-"):
            data = data[: int(arg[4:])]
        elif arg:
            data = _damage(data, arg, seed)
        (d / "clip.mp4").write_bytes(data)
        return d / "clip.mp4"
    if kind == "random":
        (d / f"input{arg}").write_bytes(rng.bytes(20000))
        return d / f"input{arg}"
    if kind == "text":
        (d / f"input{arg}").write_text("this is not a video\n" * 50)
        return d / f"input{arg}"
    if kind == "empty":
        (d / f"input{arg}").write_bytes(b"")
        return d / f"input{arg}"
    if kind == "audio":
        (d / "input.mp4").write_bytes((assets / "audio.mp4").read_bytes())
        return d / "input.mp4"
    if kind == "png":
        (d / "frame.png").write_bytes(_damage((assets / "frame.png").read_bytes(), arg))
        return d / "frame.png"
    if kind == "folder":
        folder = d / "frames"
        folder.mkdir()
        if arg == "text":
            (folder / "notes.txt").write_text("no images here\n")
            (folder / "data.csv").write_text("a,b\n1,2\n")
        elif arg == "fakejpg":
            for i in range(3):
                (folder / f"{i:03d}.jpg").write_text("not a jpeg\n")
        elif arg == "mixed":
            (folder / "000.png").write_bytes((assets / "frame.png").read_bytes())
            (folder / "001.png").write_bytes((assets / "frame.png").read_bytes()[:300])
        return folder
    if kind == "missing":
        return d / "nothing_here.mp4"
    raise ValueError(spec)


@pytest.mark.parametrize("name", cases(VIDEO_CASES))
def test_bad_video_and_image_inputs(name, assets, tmp_path, capsys):
    """Damaged or wrong inputs through the detector (the input is the point)."""
    spec, expect = VIDEO_CASES[name]
    inp = make_input(spec, assets, tmp_path, seed=len(name))
    out = tmp_path / "out"
    before = files_under(tmp_path)
    run = run_in_process([inp, "--out", out, "--no-video", "--quiet"], capsys, tmp_path)
    check(run, before, tmp_path, out, expect)


def _pipeline(d: Path, base: str, table: str, weights: Path) -> Path:
    """A copy of ``pipelines/<base>.toml`` in ``d`` whose ``[table]`` weights are ``weights``."""
    lines, current = [], None
    for line in (REPO / "pipelines" / f"{base}.toml").read_text().splitlines():
        if line.startswith("["):
            current = line.split("]")[0].lstrip("[").strip()  # "[refiner]   # comment" -> refiner
        if current == table and line.split("=")[0].strip() == "weights":
            line = f'weights = "{weights}"'
        elif line.split("=")[0].strip() == "weights":  # the other stages' shipped weights
            rel = line.split('"')[1]
            line = f'weights = "{REPO / rel}"'
        lines.append(line)
    path = d / "my_pipeline.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def make_weights(spec: str, d: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    path = d / "bad.safetensors"
    data = LIFTER.read_bytes()
    header = 8 + int.from_bytes(data[:8], "little")
    if spec.startswith("cut:"):
        arg = spec[4:]
        path.write_bytes(data[: header + 10] if arg == "tensors" else _damage(data, spec))
    elif spec.startswith("pickle"):
        state = {k: torch.zeros(3) for k in ("a", "b")}
        torch.save(state, path, **({"_use_new_zipfile_serialization": False} if spec == "pickle-legacy" else {}))
    elif spec.startswith("kind:"):
        path = WEIGHTS / spec[5:]
    elif spec == "random":
        path.write_bytes(np.random.default_rng(3).bytes(50000))
    elif spec == "empty":
        path.write_bytes(b"")
    elif spec == "missing":
        path = d / "no_such.safetensors"
    elif spec == "no-metadata":
        save_file({"w": torch.zeros(4)}, str(path))
    elif spec == "nan":  # 0xFFFFFFFF is a float32 NaN: in the first float tensor
        table = json.loads(data[8:header])
        start = min(t["data_offsets"][0] for k, t in table.items() if k != "__metadata__" and t["dtype"] == "F32")
        b = bytearray(data)
        b[header + start : header + start + 64] = b"\xff" * 64
        path.write_bytes(bytes(b))
    elif spec == "header-flip":
        b = bytearray(data)
        b[30:40] = b"\x00" * 10
        path.write_bytes(bytes(b))
    else:
        raise ValueError(spec)
    return path


WEIGHTS_CASES = {
    # name: (weights, pipeline file copied, its table that names them, refine, words in the error)
    "lifter truncated in the header": ("cut:300", "body17", "lifter", False, ("truncated",)),
    "lifter truncated in the tensors": ("cut:tensors", "body17", "lifter", False, ("truncated",)),
    "lifter truncated at 50 %": ("cut:0.5", "body17", "lifter", False, ("truncated",)),
    "lifter pickled with torch.save": ("pickle", "body17", "lifter", False, ("pickled",)),
    "lifter pickled, legacy format": ("pickle-legacy", "body17", "lifter", False, ("pickled",)),
    "2D network as the lifter": ("kind:pose_representation_h36m.safetensors", "body17", "lifter", False,
                                 ("pose_representation_h36m.safetensors", "not a lifter")),
    "refiner as the lifter": ("kind:lstm_refiner_h36m.safetensors", "body17", "lifter", False, ("not a lifter",)),
    "lifter as the refiner": ("kind:semgcn_nl_h36m_det2d.safetensors", "body17", "refiner", True,
                              ("not a refiner",)),
    "lifter as the 2D network": ("kind:semgcn_nl_h36m_det2d.safetensors", "body17-network", "representation",
                                 False, ("not a 2D pose representation network",)),
    "lifter of random bytes": ("random", "body17", "lifter", False, ("bad.safetensors",)),
    "empty lifter file": ("empty", "body17", "lifter", False, ("empty",)),
    "lifter file missing": ("missing", "body17", "lifter", False, ("no_such.safetensors",)),
    "safetensors without metadata": ("no-metadata", "body17", "lifter", False, ("metadata",)),
    "lifter with NaN tensors": ("nan", "body17", "lifter", False, ("NaN",)),
    "lifter with a damaged header": ("header-flip", "body17", "lifter", False, ("bad.safetensors",)),
}


@pytest.mark.parametrize("name", cases(WEIGHTS_CASES))
def test_bad_weights_in_a_user_pipeline(name, assets, tmp_path, capsys):
    spec, base, table, refine, words = WEIGHTS_CASES[name]
    pipeline = _pipeline(tmp_path, base, table, make_weights(spec, tmp_path))
    out = tmp_path / "out"
    before = files_under(tmp_path)
    args = [assets / "clip10.mp4", "--keypoints", assets / "kp.npz", "--pipeline", pipeline, "--out", out,
            "--no-video", "--quiet"] + (["--refine"] if refine else [])
    check(run_in_process(args, capsys, tmp_path), before, tmp_path, out, "error", words)


BODY17 = (REPO / "pipelines" / "body17.toml").read_text().replace(
    'weights = "weights/', f'weights = "{WEIGHTS}/')

PIPELINE_CASES = {
    # name: (pipeline text, expected, uses --keypoints)
    "body17 copy (control)": (BODY17, "ok", True),
    "not TOML": ("[lifter\nweights = \n", "error", True),
    "empty file": ("", "error", True),
    "binary garbage": (bytes(range(256)) * 4, "error", True),
    "no [lifter] table": (BODY17.split("[lifter]")[0], "error", True),
    "[lifter] without weights": (BODY17.replace(f'weights = "{WEIGHTS}/semgcn_nl_h36m_det2d.safetensors"', ""),
                                 "error", True),
    "weights = 3": (BODY17.replace(f'"{WEIGHTS}/semgcn_nl_h36m_det2d.safetensors"', "3"), "error", True),
    "lifter is a string": (BODY17.split("[lifter]")[0] + 'lifter = "semgcn"\n', "error", True),
    "unknown representation kind": (BODY17.replace('kind = "geometric"', 'kind = "magic"'), "error", True),
    "max_gap_frames is text": (BODY17.replace("max_gap_frames = 10", 'max_gap_frames = "ten"'), "error", True),
    "max_gap_frames negative": (BODY17.replace("max_gap_frames = 10", "max_gap_frames = -3"), "either", True),
    "flip_test is text": (BODY17.replace("flip_test = true", 'flip_test = "yes"'), "either", True),
    "unknown detector": (BODY17.replace('name = "mediapipe"', 'name = "yolo-magic"'), "error", False),
    "a train pipeline": ((REPO / "pipelines" / "train-semgcn-gt.toml").read_text(), "error", True),
    "pipeline file missing": (None, "error", True),
}


@pytest.mark.parametrize("name", cases(PIPELINE_CASES))
def test_malformed_pipeline_files(name, assets, tmp_path, capsys):
    text, expect, keypoints = PIPELINE_CASES[name]
    pipeline = tmp_path / "my_pipeline.toml"
    if isinstance(text, bytes):
        pipeline.write_bytes(text)
    elif text is not None:
        pipeline.write_text(text)
    out = tmp_path / "out"
    before = files_under(tmp_path)
    args = [assets / "clip10.mp4", "--pipeline", pipeline, "--out", out, "--no-video", "--quiet"]
    if keypoints:
        args += ["--keypoints", assets / "kp.npz"]
    check(run_in_process(args, capsys, tmp_path), before, tmp_path, out, expect)


def _good_xy(t=FRAMES):
    return (np.float32(H36M_POSE)[None] + np.zeros((t, 1, 1), np.float32)).astype(np.float32)


KEYPOINT_CASES = {
    # name: (file name, how it is made, expected)
    "npz (control)": ("kp.npz", lambda a: (a / "kp.npz").read_bytes(), "ok"),
    "json (control)": ("kp.json", lambda a: (a / "kp.json").read_bytes(), "ok"),
    "npz truncated at 50 %": ("kp.npz", lambda a: (a / "kp.npz").read_bytes()[:1800], "error"),
    "npz truncated to 100 bytes": ("kp.npz", lambda a: (a / "kp.npz").read_bytes()[:100], "error"),
    "npz empty": ("kp.npz", lambda a: b"", "error"),
    "npz of random bytes": ("kp.npz", lambda a: np.random.default_rng(5).bytes(3000), "error"),
    "npz without scores": ("kp.npz", {"scores": None}, "error"),
    "npz 2D array of keypoints": ("kp.npz", {"keypoints_2d": np.zeros((FRAMES, 17), np.float32)}, "error"),
    "npz 3D keypoints": ("kp.npz", {"keypoints_2d": np.zeros((FRAMES, 17, 3), np.float32)}, "error"),
    "npz 16 joints for h36m17": ("kp.npz", {"keypoints_2d": np.zeros((FRAMES, 16, 2), np.float32),
                                            "scores": np.ones((FRAMES, 16), np.float32)}, "error"),
    "npz scores of another shape": ("kp.npz", {"scores": np.ones((FRAMES, 5), np.float32)}, "error"),
    "npz times of another length": ("kp.npz", {"times": np.arange(3) / FPS}, "error"),
    "npz NaN only": ("kp.npz", {"keypoints_2d": np.full((FRAMES, 17, 2), np.nan, np.float32)}, "error"),
    "npz with fewer frames than the video": ("kp.npz", {"keypoints_2d": _good_xy(4),
                                                        "scores": np.ones((4, 17), np.float32),
                                                        "times": np.arange(4) / FPS}, "error"),
    "npz with more frames than the video": ("kp.npz", {"keypoints_2d": _good_xy(25),
                                                       "scores": np.ones((25, 17), np.float32),
                                                       "times": np.arange(25) / FPS}, "error"),
    "npz of an unknown layout": ("kp.npz", {"layout": np.array("octopus8")}, "error"),
    "npz image_size of 3 numbers": ("kp.npz", {"image_size": np.array([1, 2, 3])}, "error"),
    "npz keypoints as text": ("kp.npz", {"keypoints_2d": np.full((FRAMES, 17, 2), "x")}, "error"),
    "npz with an object array": ("kp.npz", {"scores": np.array([None] * FRAMES, dtype=object)}, "error"),
    "json truncated": ("kp.json", lambda a: (a / "kp.json").read_bytes()[:500], "error"),
    "json empty": ("kp.json", lambda a: b"", "error"),
    "json an object": ("kp.json", lambda a: b'{"frames": 3}', "error"),
    "json an empty list": ("kp.json", lambda a: b"[]", "error"),
    "json 5 keypoints per person": ("kp.json", "five", "error"),
    "json 3D keypoints": ("kp.json", "xyz", "error"),
    "json keypoints as text": ("kp.json", "strings", "error"),
    "json null keypoints only": ("kp.json", "nulls", "error"),
    "json with fewer frames than the video": ("kp.json", "short", "error"),
    "json not UTF-8": ("kp.json", lambda a: b"\xff\xfe\x00garbage", "error"),
    "keypoints named .txt": ("kp.txt", lambda a: (a / "kp.json").read_bytes(), "error"),
    "keypoint file missing": ("none.npz", None, "error"),
}


def make_keypoints(name: str, how, assets: Path, d: Path) -> Path:
    path = d / name
    if how is None:
        return path
    if callable(how):
        path.write_bytes(how(assets))
    elif isinstance(how, dict):
        with np.load(assets / "kp.npz") as z:
            arrays = {k: z[k] for k in z.files}
        arrays.update(how)
        np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    else:
        frames = json.loads((assets / "kp.json").read_text())
        for f in frames:
            inst = f["instances"][0]
            if how == "five":
                inst["keypoints"], inst["keypoint_scores"] = inst["keypoints"][:5], inst["keypoint_scores"][:5]
            elif how == "xyz":
                inst["keypoints"] = [p + [1.0] for p in inst["keypoints"]]
            elif how == "strings":
                inst["keypoints"] = [["a", "b"] for _ in inst["keypoints"]]
            elif how == "nulls":
                inst["keypoints"] = [[None, None] for _ in inst["keypoints"]]
        if how == "short":
            frames = frames[:4]
        path.write_text(json.dumps(frames))
    return path


@pytest.mark.parametrize("name", cases(KEYPOINT_CASES))
def test_malformed_keypoint_files(name, assets, tmp_path, capsys):
    file_name, how, expect = KEYPOINT_CASES[name]
    kp = make_keypoints(file_name, how, assets, tmp_path)
    out = tmp_path / "out"
    before = files_under(tmp_path)
    args = [assets / "clip10.mp4", "--keypoints", kp, "--out", out, "--no-video", "--quiet"]
    check(run_in_process(args, capsys, tmp_path), before, tmp_path, out, expect)


@pytest.mark.parametrize("case", ["2D network as the lifter", "video truncated to 1 KiB", "json truncated"])
def test_the_real_command_in_a_subprocess(case, assets, tmp_path):
    """A few cases again through ``python -m wsgcn_cli`` (no ``--quiet``): what a user sees."""
    out = tmp_path / "out"
    if case in WEIGHTS_CASES:
        spec, base, table, _, words = WEIGHTS_CASES[case]
        pipeline = _pipeline(tmp_path, base, table, make_weights(spec, tmp_path))
        args = [assets / "clip10.mp4", "--keypoints", assets / "kp.npz", "--pipeline", pipeline]
    elif case in VIDEO_CASES:
        args, words = [make_input(VIDEO_CASES[case][0], assets, tmp_path, seed=0)], ()
    else:
        file_name, how, _ = KEYPOINT_CASES[case]
        args, words = [assets / "clip10.mp4", "--keypoints", make_keypoints(file_name, how, assets, tmp_path)], ()
    before = files_under(tmp_path)
    run = run_subprocess(args + ["--out", out, "--no-video"], cwd=tmp_path)
    check(run, before, tmp_path, out, "error", words)


def test_there_are_at_least_50_cases():
    assert len(VIDEO_CASES) + len(WEIGHTS_CASES) + len(PIPELINE_CASES) + len(KEYPOINT_CASES) >= 50
