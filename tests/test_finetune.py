"""``finetune`` (self-supervised adaptation), the clip 2D cache, and that finetune sees the 2D ``lift`` feeds the lifter.

Synthetic fixtures made here: a small random-init lifter, and a walking-like 3D motion
projected with a known camera and written as a 2D keypoint file, so no detector runs
(except one optional test of a person-less video through the real detector).
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from wsgcn_cli import weights as wio
from wsgcn_cli.camera import project
from wsgcn_cli.data import clips as clipmod
from wsgcn_cli.detect.base import Keypoints2D
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.lifter import Lifter
from wsgcn_cli.models.registry import build_model
from wsgcn_cli.skeletons import H36M17, bone_lengths
from wsgcn_cli.train import losses
from wsgcn_cli.temporal import window_starts
from wsgcn_cli.train.finetune import adapted_parameters, finetune, split_holdout

FOCAL, SIZE = 1000.0, 1000

REST = np.array([
    [0, 0, 0], [-0.13, 0, 0], [-0.13, 0.45, 0], [-0.13, 0.89, 0], [0.13, 0, 0], [0.13, 0.45, 0],
    [0.13, 0.89, 0], [0, -0.24, 0], [0, -0.49, 0], [0, -0.60, -0.05], [0, -0.72, 0], [0.15, -0.49, 0],
    [0.15, -0.21, 0], [0.15, 0.04, 0], [-0.15, -0.49, 0], [-0.15, -0.21, 0], [-0.15, 0.04, 0]])


def _rot(axis, a):
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    rows = {"x": [[o, z, z], [z, c, -s], [z, s, c]], "y": [[c, z, s], [z, o, z], [-s, z, c]],
            "z": [[c, -s, z], [s, c, z], [z, z, o]]}[axis]
    return np.stack([np.stack(r, -1) for r in rows], -2)


def motion(T, seed=0, fps=50.0):
    """(T, 17, 3) root-relative poses, metres: swinging limbs, bending knees, slow turning."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / fps
    ph, fr = rng.uniform(0, 2 * np.pi, 8), rng.uniform(0.6, 1.2)
    wave = lambda k, freq=1.0: np.sin(2 * np.pi * freq * fr * t + ph[k])  # noqa: E731
    local = np.tile(np.eye(3), (T, 17, 1, 1))
    local[:, 1], local[:, 4] = _rot("x", 0.6 * wave(0)), _rot("x", -0.6 * wave(0))
    local[:, 2], local[:, 5] = _rot("x", -0.5 * (1 + wave(1))), _rot("x", -0.5 * (1 + wave(2)))
    local[:, 11] = _rot("x", -0.6 * wave(0)) @ _rot("z", 0.5 + 0.4 * wave(3, 0.5))
    local[:, 14] = _rot("x", 0.6 * wave(0)) @ _rot("z", -0.5 - 0.4 * wave(4, 0.5))
    local[:, 12], local[:, 15] = _rot("x", -0.8 * (1 + wave(5))), _rot("x", -0.8 * (1 + wave(6)))
    local[:, 0] = _rot("y", 0.8 * np.sin(2 * np.pi * 0.15 * t + ph[7]))
    glob, pos = np.empty_like(local), np.zeros((T, 17, 3))
    for j, par in enumerate(H36M17.parents):
        if par < 0:
            glob[:, j] = local[:, j]
            continue
        glob[:, j] = glob[:, par] @ local[:, j]
        pos[:, j] = pos[:, par] + np.einsum("tij,j->ti", glob[:, par], REST[j] - REST[par])
    return pos


def write_clip(path: Path, T=300, seed=1):
    """A synthetic clip's 2D (h36m17, pixels) as a keypoint .npz; returns (pose, root)."""
    pose = motion(T, seed)
    i = np.arange(T)
    root = np.stack([0.3 * np.sin(i / 100), 0.1 + 0 * i, 4.0 + i / T], -1)
    kp = project(pose + root[:, None], np.array([FOCAL, FOCAL]), np.array([SIZE / 2, SIZE / 2]))
    np.savez(path, keypoints_2d=kp.astype(np.float32), scores=np.ones((T, 17), np.float32),
             times=i / 50.0, fps=np.float64(50.0), image_size=np.int32([SIZE, SIZE]), layout=np.array("h36m17"))
    return pose, root


def write_base(path: Path, seed=0, codec="root_scale"):
    torch.manual_seed(seed)
    opts = {"hidden": 16, "num_blocks": 1, "dropout": 0.0}
    model = build_model("semgcn_nonlocal", **opts)
    meta = {"model": "semgcn_nonlocal", "model_options": opts, "layout": "h36m17", "codec": codec,
            "output": "root-relative camera coordinates, metres", "trained_on": {"dataset": "none"},
            "history": [], "command": "random init (test)"}
    wio.save(path, model.state_dict(), meta)
    return meta


@pytest.fixture()
def synthetic(tmp_path):
    pose, _ = write_clip(tmp_path / "walk.npz")
    meta = write_base(tmp_path / "base.safetensors")
    ref = list(bone_lengths(pose[:1])[0])
    return tmp_path, meta, ref


# the base is a random model: every weight adapts (the default adapts norms and biases only)
FAST = dict(steps_per_epoch=15, batch_size=16, lr=1e-3, w_anchor=0.0, adapt="all", device="cpu", quiet=True)


# -- held-out split and windows -----------------------------------------------------------------

def test_split_holdout_contiguous_chunks():
    held = split_holdout(400, 0.2, 50)
    assert held.sum() == 100
    starts = np.flatnonzero(np.diff(held.astype(int)) == 1) + 1
    assert len(starts) == 2 and all(held[s:s + 50].all() for s in starts)  # two whole chunks
    assert not held[:50].all() and not split_holdout(400, 0.0, 50).any()
    short = split_holdout(30, 0.2, 50)                                      # shorter than 2 chunks
    assert short[-6:].all() and not short[:-6].any()


def test_window_starts_stay_inside_usable_frames_of_one_clip():
    usable = np.array([1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1], bool)
    clip = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    assert window_starts(usable, clip, 3).tolist() == [0, 1, 7, 8]


# -- finetune on synthetic data ------------------------------------------------------------------

def test_finetune_lowers_heldout_reprojection_and_writes_weights_and_card(synthetic):
    d, base_meta, ref = synthetic
    out = d / "adapted.safetensors"
    r = finetune([d / "walk.npz"], d / "base.safetensors", out, focal=FOCAL, epochs=4, bone_reference=ref, **FAST)
    px = r["heldout_px"]
    assert px["best"] < 0.7 * px["base"], px
    assert r["clips"][0]["heldout_frames"] == 50  # round(0.2 * 6 chunks of 50) and r["clips"][0]["usable_frames"] == 300
    state, meta = wio.load(out)
    assert set(base_meta) <= set(meta)
    assert meta["model_options"] == base_meta["model_options"] and meta["codec"] == "root_scale"
    ft = meta["finetune"]
    assert ft["heldout_reprojection_px"]["best"] == px["best"] and ft["base_sha256"] == wio.sha256(d / "base.safetensors")
    assert ft["camera"]["focal_px"] == FOCAL and len(ft["history"]) == r["epochs_run"]
    Lifter.from_weights(out, device="cpu")                                     # loads as a lifter
    card = out.with_suffix(".md").read_text()
    assert "walk.npz" in card and f"{px['best']:.2f} px" in card
    curve = json.loads((d / "adapted.curve.json").read_text())                 # written by the Trainer
    assert [h["epoch"] for h in curve["points"]] == list(range(r["epochs_run"] + 1))  # 0: the base model
    assert curve["points"][0]["val_heldout_px"] == px["base"] and r["curve"] == str(d / "adapted.curve.json")
    assert {p.name for p in d.iterdir()} - {"adapted.curve.png"} == {
        "adapted.md", "adapted.safetensors", "adapted.curve.json", "base.safetensors", "walk.npz"}


def test_finetune_adapts_a_virtual_camera_lifter(tmp_path):
    """A virtual_camera lifter predicts in each frame's virtual camera: finetune rotates
    its output into the camera before reprojecting, and the held-out error falls as much."""
    pose, _ = write_clip(tmp_path / "walk.npz")
    write_base(tmp_path / "base.safetensors", codec="virtual_camera")
    out = tmp_path / "adapted.safetensors"
    r = finetune([tmp_path / "walk.npz"], tmp_path / "base.safetensors", out, focal=FOCAL, epochs=4,
                 bone_reference=list(bone_lengths(pose[:1])[0]), **FAST)
    assert r["heldout_px"]["best"] < 0.7 * r["heldout_px"]["base"], r["heldout_px"]
    assert Lifter.from_weights(out, device="cpu").codec_mode == "virtual_camera"


def test_default_finetune_changes_only_norm_and_bias_parameters(synthetic):
    d, _, ref = synthetic
    out = d / "nb.safetensors"
    r = finetune([d / "walk.npz"], d / "base.safetensors", out, focal=FOCAL, epochs=4, bone_reference=ref,
                 **{**FAST, "adapt": "norm_bias", "lr": 1e-2})
    assert r["heldout_px"]["best"] < 0.5 * r["heldout_px"]["base"], r["heldout_px"]
    base, _ = wio.load(d / "base.safetensors")
    new, meta = wio.load(out)
    model = build_model("semgcn_nonlocal", hidden=16, num_blocks=1, dropout=0.0)
    adapted = {id(p) for p in adapted_parameters(model, "norm_bias")}
    names = {n for n, p in model.named_parameters() if id(p) in adapted}
    assert names and all(n.endswith("bias") or ".bn." in n for n in names)
    changed = {n for n in base if not np.array_equal(base[n], new[n])}
    assert changed and changed <= names
    assert meta["finetune"]["adapted_parameters"] == sum(p.numel() for p in model.parameters() if id(p) in adapted)
    with pytest.raises(WsgcnError, match="parameter set"):
        finetune([d / "walk.npz"], d / "base.safetensors", d / "x.safetensors", epochs=1, **{**FAST, "adapt": "some"})


def test_observed_joints_exclude_joints_built_from_several_keypoints():
    from wsgcn_cli.pose2d.mapping import observed_joints

    assert observed_joints("h36m17").all()
    bp = observed_joints("blazepose33")
    assert not bp[[0, 7, 8, 10]].any() and bp[[1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16]].all()
    assert observed_joints("sh16").sum() == 16  # only the spine is interpolated


def test_finetune_skips_a_clip_without_a_person_with_a_warning(synthetic, monkeypatch, capsys):
    d, _, ref = synthetic
    video = d / "empty.mp4"
    video.write_bytes(b"not decoded: detection is replaced below")
    calls = []

    def no_person(path, pipe, progress=None):
        calls.append(path)
        return Keypoints2D("blazepose33", np.full((20, 33, 2), np.nan), np.zeros((20, 33)),
                           np.arange(20) / 25.0, 320, 240, 25.0)

    monkeypatch.setattr(clipmod, "detect_clip", no_person)
    r = finetune([video, d / "walk.npz"], d / "base.safetensors", d / "a.safetensors", focal=FOCAL, epochs=1,
                 bone_reference=ref, **FAST)
    assert r["skipped"] == [{"clip": "empty.mp4", "reason": "no person found in any of its 20 frame(s)"}]
    assert [c["clip"] for c in r["clips"]] == ["walk.npz"]
    assert "warning: " in capsys.readouterr().err
    with pytest.raises(WsgcnError, match="no clip has a usable person"):
        finetune([video], d / "base.safetensors", d / "b.safetensors", epochs=1, **FAST)
    assert not (d / "b.safetensors").exists()


def _kill_at_step(monkeypatch, step: int):
    """Make the ``step``-th training step (1-based) raise KeyboardInterrupt, as Ctrl-C would."""
    real = losses.temporal_smoothness_loss
    count = {"n": 0}

    def interrupt(seq, order=2, frame_scale=None):
        count["n"] += 1
        if count["n"] == step:
            raise KeyboardInterrupt
        return real(seq, order, frame_scale)

    monkeypatch.setattr(losses, "temporal_smoothness_loss", interrupt)
    return lambda: monkeypatch.setattr(losses, "temporal_smoothness_loss", real)


def _untimed(history):
    return [{k: v for k, v in h.items() if k not in ("wall_s", "samples_per_s")} for h in history]


def test_finetune_resumes_after_a_kill_to_the_same_result(synthetic, monkeypatch):
    d, _, ref = synthetic
    kw = dict(focal=FOCAL, epochs=3, bone_reference=ref, patience=10, **FAST)
    full = finetune([d / "walk.npz"], d / "base.safetensors", d / "full.safetensors", **kw)
    restore = _kill_at_step(monkeypatch, FAST["steps_per_epoch"] + 5)
    out = d / "resumed.safetensors"
    with pytest.raises(KeyboardInterrupt):
        finetune([d / "walk.npz"], d / "base.safetensors", out, **kw)
    assert not out.exists() and not out.with_suffix(".md").exists()
    ckpt = d / "resumed.safetensors.ckpt"
    assert ckpt.is_file() and torch.load(ckpt, weights_only=True)["epoch"] == 1
    assert not [p for p in d.iterdir() if "partial" in p.name]
    restore()
    again = finetune([d / "walk.npz"], d / "base.safetensors", out, **kw)
    assert not ckpt.exists()
    assert _untimed(again["history"]) == _untimed(full["history"])
    a, b = wio.load(d / "full.safetensors")[0], wio.load(out)[0]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("killed_in_epoch", [4, 5])
def test_an_interrupted_finetune_resumes_from_its_checkpoint_with_kept_weights_and_early_stopping(
        synthetic, monkeypatch, killed_in_epoch):
    """Epochs 1-3 improve, 4 and 5 do not: patience 2 stops after epoch 5 and keeps epoch 3.
    Killed in epoch 4 or 5, the run continues from its checkpoint (the kept weights and the
    history of the finished epochs in it) to the same weights, history and stop."""
    d, _, ref = synthetic
    steps = 16
    kw = dict(focal=FOCAL, epochs=6, bone_reference=ref, **{**FAST, "steps_per_epoch": steps, "patience": 2})
    full = finetune([d / "walk.npz"], d / "base.safetensors", d / "full.safetensors", **kw)
    assert (full["epochs_run"], full["heldout_px"]["best_epoch"], full["stopped_early"]) == (5, 3, True)
    restore = _kill_at_step(monkeypatch, (killed_in_epoch - 1) * steps + 3)
    out = d / "resumed.safetensors"
    with pytest.raises(KeyboardInterrupt):
        finetune([d / "walk.npz"], d / "base.safetensors", out, **kw)
    ck = torch.load(d / "resumed.safetensors.ckpt", weights_only=True)
    assert ck["epoch"] == killed_in_epoch - 1 and set(ck["modules"]) == {"model", "best"}
    assert ck["best"]["epoch"] == 3 and not out.exists()
    done = [h for h in json.loads(ck["history"]) if h["epoch"] > 0]
    restore()
    again = finetune([d / "walk.npz"], d / "base.safetensors", out, **kw)
    assert again["history"][: len(done)] == done                               # read back, timings included
    assert _untimed(again["history"]) == _untimed(full["history"])
    assert again["heldout_px"] == full["heldout_px"] and again["stopped_early"]
    a, b = wio.load(d / "full.safetensors")[0], wio.load(out)[0]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_written_with_other_settings_is_refused(synthetic, monkeypatch):
    d, _, ref = synthetic
    kw = dict(focal=FOCAL, epochs=3, bone_reference=ref, **FAST)
    restore = _kill_at_step(monkeypatch, FAST["steps_per_epoch"] + 2)
    out = d / "run.safetensors"
    ckpt = d / "run.safetensors.ckpt"
    with pytest.raises(KeyboardInterrupt):
        finetune([d / "walk.npz"], d / "base.safetensors", out, **kw)
    restore()
    written = ckpt.read_bytes()
    write_base(d / "other_base.safetensors", seed=1)
    for change in (dict(lr=2e-3), dict(window=7), dict(focal=900.0), dict(holdout=0.3),
                   dict(weights=d / "other_base.safetensors")):
        args = {**kw, "weights": d / "base.safetensors", **change}
        with pytest.raises(WsgcnError, match="other settings") as e:
            finetune([d / "walk.npz"], args.pop("weights"), out, **args)
        assert "\n" not in str(e.value) and str(ckpt) in str(e.value)
    assert ckpt.read_bytes() == written and not out.exists()
    r = finetune([d / "walk.npz"], d / "base.safetensors", out, **{**kw, "epochs": 2, "patience": 5})
    assert r["epochs_run"] == 2 and not ckpt.exists()                         # epochs and patience may change
    ckpt.write_bytes(written[: len(written) // 2])                              # a damaged checkpoint
    with pytest.raises(WsgcnError, match="cannot read checkpoint"):
        finetune([d / "walk.npz"], d / "base.safetensors", out, overwrite=True, **kw)


def test_finetune_bad_input_is_a_one_line_error(synthetic):
    d, _, _ = synthetic
    base = d / "base.safetensors"
    (d / "taken.safetensors").write_bytes(b"x")
    cases = [
        (dict(out=d / "taken.safetensors"), "exists"),
        (dict(out=d / "x.pt"), ".safetensors"),
        (dict(out=d / "nofolder" / "x.safetensors"), "does not exist"),
        (dict(clips=[d / "missing.mp4"]), "does not exist"),
        (dict(weights=d / "missing.safetensors"), "not found"),
        (dict(focal=-3.0), "focal"),
        (dict(window=2), "window"),
        (dict(nonsense=1), "unknown finetune option"),
        (dict(bone_reference="tall"), "bone reference"),
    ]
    for change, words in cases:
        args = dict(clips=[d / "walk.npz"], weights=base, out=d / "ok.safetensors", epochs=1, quiet=True, device="cpu")
        args.update(change)
        with pytest.raises(WsgcnError, match=words) as e:
            finetune(**args)
        assert "\n" not in str(e.value)
    assert (d / "taken.safetensors").read_bytes() == b"x"


# -- the 2D cache --------------------------------------------------------------------------------

def test_clip_2d_is_cached_and_redetected_only_when_stale(tmp_path, monkeypatch):
    from wsgcn_cli.pipeline import Pipeline, load

    spec = load("body17", kind="lift")
    pipe = Pipeline.from_spec(spec, device="cpu")
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"fake video bytes")
    pose = motion(40)
    kp = project(pose + [0, 0, 4.0], np.array([FOCAL, FOCAL]), np.array([500.0, 500.0]))
    calls = []

    def fake_detect(path, pipe, progress=None):
        calls.append(path)
        return Keypoints2D("h36m17", kp, np.ones((40, 17)), np.arange(40) / 50.0, SIZE, SIZE, 50.0)

    monkeypatch.setattr(clipmod, "detect_clip", fake_detect)
    cache_dir = tmp_path / "cache"
    first = clipmod.load_clip(video, pipe, cache_dir=cache_dir)
    assert len(calls) == 1 and not first.from_cache and first.cache == cache_dir / "clip.mp4.wsgcn2d.npz"
    second = clipmod.load_clip(video, pipe, cache_dir=cache_dir)
    assert len(calls) == 1 and second.from_cache
    assert np.allclose(second.kp.xy, first.kp.xy) and second.valid.all()
    other = Pipeline.from_spec(dict(spec, detector=dict(spec["detector"], min_detection_confidence=0.7)), device="cpu")
    clipmod.load_clip(video, other, cache_dir=cache_dir)                       # other detector settings
    assert len(calls) == 2
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))               # the video changed
    clipmod.load_clip(video, other, cache_dir=cache_dir)
    assert len(calls) == 3
    # the cache is a keypoint file that lift --keypoints reads
    from wsgcn_cli.detect.precomputed import load_keypoints

    assert load_keypoints(first.cache).num_frames == 40


def test_a_video_without_a_person_through_the_real_detector(tmp_path):
    pytest.importorskip("mediapipe")
    from wsgcn_cli.io.video import VideoWriter

    video = tmp_path / "wall.mp4"
    with VideoWriter(video, 25.0, 128, 96, threaded=False) as w:
        for i in range(6):
            w.write(np.full((96, 128, 3), 90 + 10 * i, np.uint8))
    write_clip(tmp_path / "walk.npz", T=120)
    write_base(tmp_path / "base.safetensors")
    r = finetune([video, tmp_path / "walk.npz"], tmp_path / "base.safetensors", tmp_path / "a.safetensors",
                 epochs=1, steps_per_epoch=2, quiet=True, device="cpu", bone_reference="base")
    assert [s["clip"] for s in r["skipped"]] == ["wall.mp4"]
    assert (tmp_path / "wall.mp4.wsgcn2d.npz").is_file()                       # cached beside the clip


def test_cli_finetune_uses_the_library_defaults_and_rejects_bad_options(synthetic):
    import subprocess
    import sys

    d, _, _ = synthetic
    cmd = [sys.executable, "-m", "wsgcn_cli", "finetune", str(d / "walk.npz"), "-w", str(d / "base.safetensors"),
           "--focal", str(FOCAL), "--epochs", "1", "--device", "cpu", "--quiet"]
    r = subprocess.run(cmd + ["-o", str(d / "cli.safetensors")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    cfg = wio.load(d / "cli.safetensors")[1]["finetune"]["config"]
    assert (cfg["lr"], cfg["adapt"]) == (3e-4, "norm_bias")
    r = subprocess.run(cmd + ["-o", str(d / "bad.safetensors"), "--adapt", "some"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1].startswith("error: unknown parameter set")
    assert not (d / "bad.safetensors").exists()


# -- finetune sees what lift feeds the lifter ------------------------------------------------------

@pytest.mark.parametrize("name", ["body17-network", "body17-network-joint"])
def test_finetune_2d_equals_what_lift_feeds_the_lifter(tmp_path, name):
    """For the same clip (the bundled video's detections, as a keypoint file) and pipeline,
    finetune's 2D is lift's 2D stage output, network included; a lifter that reads the
    network's confidences adapts without a shape error."""
    from test_pipeline_object import SAMPLE, _sample_keypoints

    from wsgcn_cli import api
    from wsgcn_cli.pipeline import Pipeline

    kp = _sample_keypoints(tmp_path / "clip.npz")
    r = api.lift(SAMPLE, pipeline=name, out_dir=tmp_path / "lift", keypoints=kp, video=False, quiet=True, device="cpu")
    lifted = np.load(r["outputs"]["npz"])
    clip = clipmod.load_clip(kp, Pipeline.from_file(name, device="cpu"))
    assert np.array_equal(clip.kp.xy, lifted["keypoints_2d"], equal_nan=True)
    assert np.array_equal(clip.kp.score, lifted["scores"])
    assert np.array_equal(clip.valid, ~lifted["missing"]) and clip.raw_layout == "blazepose33"
    out = finetune([kp], None, tmp_path / "ft.safetensors", pipeline=name, epochs=1, steps_per_epoch=2,
                   bone_reference="base", quiet=True, device="cpu")
    assert Path(out["weights"]).is_file()
