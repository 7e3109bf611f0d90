"""Whole-body 2D: the MediaPipe -> COCO-WholeBody-133 tables, assembly, gaps, and the
Holistic detector on real images (those skipped without mediapipe or the data)."""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from wsgcn_cli.detect.base import Keypoints2D, available_detectors
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.pose2d import wholebody as wb
from wsgcn_cli.skeletons import BLAZEPOSE33, COCO_WHOLEBODY133, FACE68_FLIP, FACE68_RIGHT

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SAMPLE = ROOT / "samples" / "sports2d_clip.mp4"
needs_mediapipe = pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None,
                                     reason="mediapipe is not installed")


def test_tables():
    names = COCO_WHOLEBODY133.joint_names
    assert len(names) == 133
    # body: the BlazePose landmark of the same name
    for coco, bp in enumerate(wb.BODY17_FROM_BLAZEPOSE):
        assert names[coco] == BLAZEPOSE33.joint_names[bp]
    assert [(names[d], BLAZEPOSE33.joint_names[s]) for d, s in wb.FEET_FROM_BLAZEPOSE] == [
        ("left_big_toe", "left_foot_index"), ("left_heel", "left_heel"),
        ("right_big_toe", "right_foot_index"), ("right_heel", "right_heel")]
    assert [names[i] for i in wb.ESTIMATED_KEYPOINTS] == ["left_small_toe", "right_small_toe"]
    face = np.array(wb.FACE68_FROM_MESH468)
    assert face.shape == (68,) and len(set(face)) == 68 and (face >= 0).all() and (face < 468).all()
    assert wb.HAND21_FROM_MEDIAPIPE == tuple(range(21))
    assert names[91:96] == ("left_hand_wrist", "left_hand_thumb_1", "left_hand_thumb_2",
                            "left_hand_thumb_3", "left_hand_thumb_4")
    flip = np.array(FACE68_FLIP)
    assert (flip[flip] == np.arange(68)).all()
    # the 300-W mirror pairs of our face flip agree with AFLW2000-3D's flip_index
    npz = DATA / "face_aflw2000_3d" / "aflw2000_3d_68.npz"
    if npz.is_file():
        assert (np.load(npz)["flip_index"] == flip).all()
    assert set(FACE68_RIGHT) | {flip[i] for i in FACE68_RIGHT} | \
        {i for i in range(68) if flip[i] == i} == set(range(68))
    perm = COCO_WHOLEBODY133.flip_permutation()
    assert (perm[perm] == np.arange(133)).all() and perm[23 + 36] == 23 + 45
    assert all(0 <= a < 133 and 0 <= b < 133 for a, b in COCO_WHOLEBODY133.edges)


def _body():
    rng = np.random.default_rng(0)
    return rng.uniform(100, 400, (33, 2)).astype(np.float32), np.linspace(0.5, 1, 33)


def test_assemble_body_feet_and_missing_parts():
    body, vis = _body()
    xy, score = wb.assemble_wholebody(body, vis)
    assert xy.shape == (133, 2) and score.shape == (133,) and xy.dtype == np.float32
    np.testing.assert_array_equal(xy[:17], body[list(wb.BODY17_FROM_BLAZEPOSE)])
    np.testing.assert_array_equal(xy[17], body[31])
    np.testing.assert_array_equal(xy[22], body[30])
    small = body[31] + wb.SMALL_TOE_BACK * (body[29] - body[31]) \
        + wb.SMALL_TOE_OUT * (body[23] - body[24])
    np.testing.assert_allclose(xy[18], small, rtol=1e-6)
    assert score[18] == pytest.approx(wb.ESTIMATED_SCORE_FACTOR * vis[[31, 29, 23, 24]].min())
    assert score[21] <= 0.5 * score[[20, 22]].min() + 1e-6
    # unseen face and hands: NaN, score 0
    assert np.isnan(xy[23:]).all() and (score[23:] == 0).all()
    # no person at all
    xy, score = wb.assemble_wholebody(np.full((33, 2), np.nan), np.zeros(33))
    assert np.isnan(xy).all() and (score == 0).all()


def test_assemble_face_and_hands():
    body, vis = _body()
    mesh = np.stack([np.arange(478), -np.arange(478)], 1).astype(np.float32)  # 478: irises
    left = np.arange(42, dtype=np.float32).reshape(21, 2)
    xy, score = wb.assemble_wholebody(body, vis, mesh, 0.7, left, 0.9, None, 0.8)
    np.testing.assert_array_equal(xy[23:91, 0], wb.FACE68_FROM_MESH468)
    np.testing.assert_array_equal(xy[91:112], left)
    assert np.allclose(score[23:91], 0.7) and np.allclose(score[91:112], 0.9)
    assert np.isnan(xy[112:]).all() and (score[112:] == 0).all()
    with pytest.raises(WsgcnError, match="face_xy"):
        wb.assemble_wholebody(body, vis, mesh[:100])
    with pytest.raises(WsgcnError, match="body_score"):
        wb.assemble_wholebody(body, vis[:10])


def test_gaps_filled_as_for_the_body():
    T = 8
    base = np.linspace(0, 100, 133 * 2, dtype=np.float32).reshape(133, 2)
    xy = base[None] + np.arange(T, dtype=np.float32)[:, None, None]      # moves 1 px/frame
    score = np.ones((T, 133), np.float32)
    xy[2:4, 91:112] = np.nan                        # left hand lost for 2 frames
    score[2:4, 91:112] = 0
    xy[1:7, 23:91] = np.nan                         # face lost for 6 frames
    score[1:7, 23:91] = 0
    kp = Keypoints2D("coco_wholebody133", xy, score, np.arange(T) / 30, 640, 480, 30)
    filled, missing = wb.fill_wholebody_gaps(kp, 3)
    np.testing.assert_allclose(filled.xy[2:4, 91:112],
                               base[None, 91:112] + np.array([2.0, 3.0])[:, None, None], atol=1e-4)
    assert np.allclose(filled.score[2:4, 91:112], 0.2)
    assert np.isnan(filled.xy[1:7, 23:91]).all() and (filled.score[1:7, 23:91] == 0).all()
    assert missing.tolist() == [False] + [True] * 6 + [False]
    found = wb.part_found(filled)
    assert found["left_hand"].all() and found["face"].tolist() == [True] + [False] * 6 + [True]
    with pytest.raises(WsgcnError, match="coco_wholebody133"):
        wb.fill_wholebody_gaps(Keypoints2D("coco17", xy[:, :17], score[:, :17],
                                           np.arange(T) / 30, 640, 480, 30), 3)


def test_registered():
    assert "mediapipe_holistic" in available_detectors()


def _image(path):
    import cv2
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _face_checks(face):
    """Ordering and symmetry of 68 300-W points on an upright, roughly frontal face."""
    x, y = face[:, 0], face[:, 1]
    width = x[16] - x[0]
    assert width > 0                                          # subject's right on image left
    assert (np.diff(x[0:9]) > -0.02 * width).all() and (np.diff(x[8:17]) > -0.02 * width).all()
    assert y[8] == y[0:17].max()                              # chin lowest on the jaw
    assert y[17:27].mean() < y[36:48].mean() < y[30] < y[48:68].mean()   # brows, eyes, nose, mouth
    assert x[36] < x[39] < x[42] < x[45]                      # eye corners, right to left
    assert x[48] < x[60] < x[64] < x[54]                      # mouth corners outside the inner lip
    assert y[62] < y[66] and y[51] < y[57]                    # upper lip above lower lip
    # symmetry: a point and its mirror partner lie on opposite sides of the nose line at
    # similar distances
    mid = np.polyfit(y[27:31], x[27:31], 1)
    d = x - np.polyval(mid, y)
    pairs = [(i, FACE68_FLIP[i]) for i in FACE68_RIGHT]
    assert all(d[i] < 0 < d[j] for i, j in pairs)
    assert np.median([abs(d[i] + d[j]) for i, j in pairs]) < 0.08 * width


@needs_mediapipe
def test_holistic_face_on_image():
    from wsgcn_cli.detect.base import make_detector

    image = _image(DATA / "images" / "astronaut.png")
    with make_detector("mediapipe_holistic", static_image_mode=True) as det:
        assert det.layout == "coco_wholebody133"
        xy, score = det.detect(image)
    assert xy.shape == (133, 2) and np.isfinite(xy[:17]).all()
    assert (score[23:91] > 0.5).all()
    _face_checks(xy[23:91])


@needs_mediapipe
def test_holistic_face_against_coco_wholebody():
    ann_path = DATA / "wholebody" / "test_coco_wholebody.json"
    image = _image(DATA / "images" / "coco" / "000000000785.jpg")
    if not ann_path.is_file():
        pytest.skip(f"{ann_path} is absent")
    from wsgcn_cli.detect.holistic import HolisticDetector

    ann = [a for a in json.load(open(ann_path))["annotations"] if a["image_id"] == 785][0]
    gt = np.array(ann["face_kpts"]).reshape(68, 3)
    with HolisticDetector(static_image_mode=True) as det:
        xy, score = det.detect(image)
    err = np.linalg.norm(xy[23:91] - gt[:, :2], axis=1)
    diag = np.hypot(*ann["face_box"][2:])
    assert err.mean() < 0.06 * diag                           # measured 1.4 px / 36.9 px
    assert np.argmax(err) not in (30, 36, 45, 48, 54)         # no gross swap of a landmark


@needs_mediapipe
def test_holistic_hands_on_clip():
    if not SAMPLE.is_file():
        pytest.skip(f"{SAMPLE} is absent")
    from wsgcn_cli.detect.holistic import HolisticDetector
    from wsgcn_cli.io.video import open_frames

    seen = {"left_hand": 0, "right_hand": 0}
    with open_frames(SAMPLE) as src, HolisticDetector() as det:
        for frame in itertools.islice(src, 20):
            xy, score = det.detect(frame.image)
            for part, sl, wrist, elbow in (("left_hand", wb.LEFT_HAND, 9, 7),
                                           ("right_hand", wb.RIGHT_HAND, 10, 8)):
                if det.last_sources[part] is None:
                    assert np.isnan(xy[sl]).all() and (score[sl] == 0).all()
                    continue
                seen[part] += 1
                hand = xy[sl]
                forearm = np.linalg.norm(xy[wrist] - xy[elbow])
                # the hand's wrist is at the body's wrist (this side's hand, not the other)
                assert np.linalg.norm(hand[0] - xy[wrist]) < 0.6 * forearm
                # COCO-WholeBody order: fingers run root -> tip away from the wrist (most of
                # them: a curled finger's tip may come back towards the palm)
                outward = [np.linalg.norm(hand[4 + 4 * f] - hand[0]) > 0.8 * np.linalg.norm(hand[1 + 4 * f] - hand[0])
                           for f in range(5)]
                assert sum(outward) >= 3, outward
    assert seen["left_hand"] + seen["right_hand"] >= 5


@needs_mediapipe
def test_holistic_bad_options():
    from wsgcn_cli.detect.holistic import HolisticDetector

    with pytest.raises(WsgcnError, match="min_anchor_score"):
        HolisticDetector(min_anchor_score=2)
