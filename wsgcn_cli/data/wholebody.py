"""Composite whole-body 3D poses (COCO-WholeBody-133) from real bodies, hands and faces.

H3WB's training set is not reachable from here, so whole-body training data is composed
from three real 3D datasets (all research-only; ``shared/data/SOURCES.md``):

* **Bodies**: Human3.6M 3D (:mod:`wsgcn_cli.data.h36m`; train S1 S5 S6 S7 S8, test S9
  S11), 17 joints, world frame (z up), converted to metres.
* **Hands**: FPHA 3D (``hands_fpha/fpha_hands_21j_mm.npz``): 105,459 right hands in the
  MediaPipe / COCO-WholeBody hand order. Frames whose finger segments (MCP->PIP,
  PIP->DIP, ...) differ from their sequence's median by more than
  :data:`FPHA_GLITCH_MM` are dropped (the source's IK glitches, 1.3 % of frames).
  Subjects :data:`FPHA_TEST_SUBJECTS` (6) are held out for testing. Left hands are
  mirrored right hands.
* **Faces**: AFLW2000-3D (``face_aflw2000_3d/aflw2000_3d_68.npz``): 2,000 68-point
  3DMM-fitted landmark sets (iBUG 300-W order). Sample 1902 (a flipped fit, see its
  README) is dropped; samples from :data:`FACE_TEST_FROM` on are held out for testing.

Output layout: COCO-WholeBody-133 (:data:`wsgcn_cli.skeletons.COCO_WHOLEBODY133`;
0-16 COCO-17, 17-22 feet, 23-90 face, 91-111 left hand, 112-132 right hand). The pelvis
(root) is the mean of the hips 11 and 12, as in H3WB; it equals Human3.6M's joint 0.

Recipe (all per sample, vectorised in torch; "left" is the person's left)
--------------------------------------------------------------------------
Body 5-16: shoulders, elbows, wrists, hips, knees, ankles are Human3.6M's joints
(:data:`COCO_FROM_H36M`). Human3.6M's hips are joint centres, about 3 cm wider apart than
H3WB's hip keypoints (seen on the one H3WB fixture pose); they are kept.

Face 23-90: each AFLW2000-3D face is turned into a right-handed frame (``z' = -z``),
expressed in its own axes (left = outer eye corner 36 -> 45, up = chin 8 -> nasion 27,
forward = left x up), then frontalised and normalised by generalised Procrustes to the
mean face (:func:`wsgcn_cli.metrics.procrustes_align`, 3 rounds), in units of the outer
eye-corner distance (ex-ex) with the origin at the eye-corner midpoint. It is scaled to a
metric head, ex-ex = :data:`FACE_EYE_CORNER_M` (90 mm, adult mean, Farkas 1994: 87.8 mm
women, 91.2 mm men) times the body-size factor and a jitter (:data:`FACE_SCALE_JITTER`).
It is attached to a head frame made from Human3.6M's thorax 8, neck/nose 9 and head 10:
left = (J10 - J9) x (J9 - J8) (joint 9 always lies 15+ mm off the line 8-10 in the
training set, so this is defined), up = J10 - J8 made orthogonal, forward = left x up.
The face frame is the head frame pitched down by :data:`FACE_PITCH_DEG` about its left
axis, and the eye-corner midpoint sits at :data:`FACE_OFFSET` (ex-ex units: up, forward
of joint 9). Both were measured on the H3WB fixture pose (S1 "Directions", where
H3WB's 3D and Human3.6M's share a frame): one pose, so a rough calibration.
The COCO nose 0 is the face's nose tip (face point 30; H3WB's nose is 1 cm from it on the
fixture), not Human3.6M's joint 9, which lies about 8 cm behind the nose tip.
Eyes 1, 2 are the means of the six eye-contour points (42-47 left, 36-41 right; the
pupil centre). Ears 3, 4 are the outer eye corner (45 left, 36 right) plus
:data:`EAR_OFFSET` (ex-ex units in the face frame: outward, up, forward; H3WB fixture).

Feet 17-22: the foot direction is horizontal: the body's forward direction (the
horizontal normal of the hip and shoulder lines), turned towards the knee's bending
direction (the horizontal part of the knee's offset from the hip-ankle line, in full when
that offset exceeds 15 % of the shank) and turned outward by a random toe-out
:data:`TOE_OUT_DEG`; it is then pitched half way towards perpendicular to the shank
(flat on the floor when standing, following a lifted lower leg). Heel, big toe and small
toe are the ankle plus :data:`FOOT_HEEL`, :data:`FOOT_BIG_TOE`, :data:`FOOT_SMALL_TOE`
(along the foot, up, outward) times the shank length |knee - ankle|. The constants were
measured on the H3WB fixture pose relative to Human3.6M's ankle (heel to big toe 0.50
shank = 23 cm there; anthropometric foot length is 0.152 height = 0.62 shank, Drillis &
Contini 1966 via Winter 2009: the keypoints lie inside the foot's outline).

Hands 91-132: each FPHA hand is expressed in its own frame (distal = wrist -> middle MCP,
palmar = (index MCP - pinky MCP) x distal, radial = distal x palmar) in metres; a left
hand mirrors the radial axis. The hand's wrist is placed exactly on the body's wrist
(9 or 10) and its distal axis along the forearm (elbow -> wrist). Its palm faces a
neutral direction: the elbow's flexion axis (upper arm x forearm, pointing medially), or,
as the elbow straightens, the body's medial direction; turned by a random
pronation/supination twist uniform in +-:data:`HAND_TWIST_DEG`, then flexed/extended at
the wrist (:data:`WRIST_FLEX_DEG`) and deviated (:data:`WRIST_DEVIATION_DEG`). Size: FPHA's
own hand size times the body-size factor and a jitter (:data:`HAND_SCALE_JITTER`).

Body-size factor: the sum of the thigh, shank, upper-arm and forearm lengths over
:data:`LIMB_REF_M` (the Human3.6M training median), clipped to 0.85-1.15.

Synthesised keypoints (:data:`SYNTHESISED`; ``labelled`` False): the eyes and ears (made
from face points by a rule) and all six foot points (made from the leg). Everything else
is a measured 3D point of a real dataset, moved rigidly (and scaled) onto the body.

2D: through the Human3.6M camera of the sample's subject (a random one of the four,
distortion included; :func:`wsgcn_cli.camera.project`) or a random virtual camera
(:func:`wsgcn_cli.data.augment.virtual_view`; 1000x1000 px, pinhole), then detector-like
noise and dropped parts (:class:`DetectorNoise`).

Limits: the parts are independent draws (a hand's grip does not match the body's
action, the face's expression and shape do not match the subject); hand orientation about
the forearm is random, not measured; the feet are a rule; the head frame and the ear and
foot constants come from one H3WB pose.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wsgcn_cli.camera import project
from wsgcn_cli.data.augment import VirtualCameraRanges, scale_bones, virtual_view
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.pose2d.wholebody import ESTIMATED_KEYPOINTS, ESTIMATED_SCORE_FACTOR
from wsgcn_cli.skeletons import WHOLEBODY133_PELVIS

NUM_KEYPOINTS = 133

#: COCO-WholeBody index <- Human3.6M-17 index for the measured body joints.
COCO_FROM_H36M = {5: 11, 6: 14, 7: 12, 8: 15, 9: 13, 10: 16, 11: 4, 12: 1, 13: 5, 14: 2, 15: 6, 16: 3}

#: Keypoints made by a rule rather than measured: eyes, ears and the six foot points.
SYNTHESISED = (1, 2, 3, 4, 17, 18, 19, 20, 21, 22)

#: Per keypoint: True where the composite's 3D is a measured point (not in SYNTHESISED).
LABELLED = np.ones(NUM_KEYPOINTS, bool)
LABELLED[list(SYNTHESISED)] = False

#: The hips whose mean is the pelvis (root), as in H3WB.
PELVIS = WHOLEBODY133_PELVIS

FPHA_TRAIN_SUBJECTS = (1, 2, 3, 4, 5)
FPHA_TEST_SUBJECTS = (6,)
#: A frame is dropped where a finger segment differs from its sequence median by more (mm).
FPHA_GLITCH_MM = 10.0

#: AFLW2000-3D samples from this index on are the test faces; FACE_DROPPED are never used.
FACE_TEST_FROM = 1600
FACE_DROPPED = (1902,)

FACE_EYE_CORNER_M = 0.090
FACE_SCALE_JITTER = 0.04
FACE_PITCH_DEG = 26.4
#: Eye-corner midpoint relative to Human3.6M joint 9, head frame (left, up, forward), ex-ex units.
FACE_OFFSET = (0.0, 0.47, 0.60)
#: Ear relative to the outer eye corner, face frame (outward, up, forward), ex-ex units.
EAR_OFFSET = (0.35, -0.63, -0.88)

#: Foot points relative to the ankle, (along the foot, up, outward) x shank length.
FOOT_HEEL = (-0.02, -0.02, -0.05)
FOOT_BIG_TOE = (0.48, -0.03, -0.05)
FOOT_SMALL_TOE = (0.40, -0.03, 0.055)
#: Toe-out angle (mean, std) in degrees, outward positive.
TOE_OUT_DEG = (5.0, 7.0)
#: Knee offset from the hip-ankle line (share of the shank) at which the foot follows the knee.
KNEE_CUE_SHARE = 0.15

HAND_TWIST_DEG = 90.0
#: Wrist flexion (+) / extension and radial/ulnar deviation: (std, clip) in degrees.
WRIST_FLEX_DEG = (15.0, 35.0)
WRIST_DEVIATION_DEG = (8.0, 20.0)
HAND_SCALE_JITTER = 0.04

#: Median over Human3.6M S1 S5 S6 S7 S8 of thigh + shank + upper arm + forearm (m).
LIMB_REF_M = 1.424
BODY_FACTOR_CLIP = (0.85, 1.15)

_LEG = {"left": (4, 5, 6), "right": (1, 2, 3)}            # H36M hip, knee, ankle
_ARM = {"left": (11, 12, 13), "right": (14, 15, 16)}      # H36M shoulder, elbow, wrist


def default_root() -> Path:
    """``../shared/data`` beside the repository checkout (holds ``h36m``, ``hands_fpha``,
    ``face_aflw2000_3d``)."""
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def _require(path: Path) -> Path:
    if not path.is_file():
        raise WsgcnError(f"whole-body source file not found: {path} (see shared/data/SOURCES.md)")
    return path


# ---------------------------------------------------------------------------------------
# Sources -> canonical parts (numpy, once)
# ---------------------------------------------------------------------------------------

def _unit_np(v):
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def load_fpha_hands(subjects=FPHA_TRAIN_SUBJECTS, root: str | Path | None = None,
                    canonical: bool = True) -> np.ndarray:
    """FPHA right hands of ``subjects`` (1..6), glitch frames dropped (:data:`FPHA_GLITCH_MM`).

    Returns float32 (N, 21, 3) metres in the MediaPipe / COCO-WholeBody hand order. With
    ``canonical`` each hand is in its own frame: origin the wrist, axes (distal = wrist ->
    middle MCP, palmar = (index MCP - pinky MCP) x distal, radial = distal x palmar);
    otherwise FPHA's depth-camera frame (x right, y down, z forward).
    Raises WsgcnError if the file is missing or a subject is unknown.
    """
    root = Path(root) if root else default_root()
    data = np.load(_require(root / "hands_fpha" / "fpha_hands_21j_mm.npz"))
    bad = [s for s in subjects if s not in range(1, 7)]
    if bad:
        raise WsgcnError(f"unknown FPHA subject(s) {bad}; FPHA has subjects 1-6")
    joints, seq, subj = data["joints"].astype(np.float64), data["sequence"], data["subject"]
    parents = data["parents"].astype(int)
    seg = np.linalg.norm(joints[:, 1:] - joints[:, parents[1:]], axis=-1)    # (N, 20) mm
    med = np.empty_like(seg)
    starts = np.flatnonzero(np.r_[True, seq[1:] != seq[:-1], True])         # sequences are contiguous
    for a, b in zip(starts[:-1], starts[1:]):
        med[a:b] = np.median(seg[a:b], axis=0)
    keep = (np.abs(seg - med).max(1) <= FPHA_GLITCH_MM) & np.isin(subj, list(subjects))
    hands = joints[keep] / 1000.0
    if not canonical:
        return hands.astype(np.float32)
    rel = hands - hands[:, :1]
    distal = _unit_np(rel[:, 9])
    palmar = _unit_np(np.cross(rel[:, 5] - rel[:, 17], distal))
    radial = np.cross(distal, palmar)
    axes = np.stack([distal, palmar, radial], 1)                             # (N, 3, 3) rows
    return np.einsum("nkc,njc->njk", axes, rel).astype(np.float32)


def _face_axes(pts):
    left = _unit_np(pts[..., 45, :] - pts[..., 36, :])
    up = pts[..., 27, :] - pts[..., 8, :]
    up = _unit_np(up - (up * left).sum(-1, keepdims=True) * left)
    return np.stack([left, up, np.cross(left, up)], -2)                     # (..., 3, 3) rows


def _canonical_face(pts):
    """Faces (..., 68, 3) right-handed -> own axes, eye-corner midpoint origin, ex-ex units."""
    origin = (pts[..., 36:37, :] + pts[..., 45:46, :]) / 2
    scale = np.linalg.norm(pts[..., 45, :] - pts[..., 36, :], axis=-1)[..., None, None]
    return np.einsum("...kc,...jc->...jk", _face_axes(pts), pts - origin) / scale


def load_aflw_faces(split: str = "train", root: str | Path | None = None) -> np.ndarray:
    """AFLW2000-3D faces of ``split`` (``"train"``: samples < :data:`FACE_TEST_FROM`,
    ``"test"``: the rest, ``"all"``), :data:`FACE_DROPPED` removed, frontalised.

    Returns float32 (N, 68, 3) in units of the outer eye-corner distance, in the face
    frame (x the subject's left, y up, z forward out of the face; right-handed), origin
    the midpoint of the outer eye corners 36 and 45. Frontalised by generalised Procrustes
    (rotation, translation, scale) to the mean face. Source frame: x right, y down (image
    px), z towards the camera (left-handed); z is negated first.
    Raises WsgcnError if the file is missing or the split is unknown.
    """
    from wsgcn_cli.metrics import procrustes_align

    root = Path(root) if root else default_root()
    data = np.load(_require(root / "face_aflw2000_3d" / "aflw2000_3d_68.npz"))
    pts = data["landmarks"].astype(np.float64) * np.array([1.0, 1.0, -1.0])
    index = np.arange(len(pts))
    sel = {"train": index < FACE_TEST_FROM, "test": index >= FACE_TEST_FROM, "all": index >= 0}
    if split not in sel:
        raise WsgcnError(f"unknown face split {split!r}; use 'train', 'test' or 'all'")
    pts = pts[sel[split] & ~np.isin(index, FACE_DROPPED)]
    faces = _canonical_face(pts)
    for _ in range(3):
        mean = _canonical_face(faces.mean(0))
        faces = procrustes_align(faces, np.broadcast_to(mean, faces.shape))
    return faces.astype(np.float32)


# ---------------------------------------------------------------------------------------
# Composition (torch, batched)
# ---------------------------------------------------------------------------------------

def _unit(v):
    return v / torch.linalg.vector_norm(v, dim=-1, keepdim=True).clamp(min=1e-9)


def _dot(a, b):
    return (a * b).sum(-1, keepdim=True)


def _rotate(v, axis, angle):
    """Rodrigues: vectors (B, 3) about unit axes (B, 3) by angles (B,) radians."""
    c, s = angle.cos()[:, None], angle.sin()[:, None]
    return v * c + torch.linalg.cross(axis, v) * s + axis * _dot(axis, v) * (1 - c)


def _clipped_normal(b, std_clip_deg, gen, dev, mean_deg=0.0):
    std, clip = std_clip_deg
    x = mean_deg + std * torch.randn(b, generator=gen, device=dev)
    return torch.deg2rad(x.clamp(mean_deg - clip, mean_deg + clip))


def body_factor(body17):
    """Body-size factor (B,) of Human3.6M-17 poses (B, 17, 3) metres: limb lengths over
    :data:`LIMB_REF_M`, clipped to :data:`BODY_FACTOR_CLIP`."""
    pairs = [(4, 5), (5, 6), (1, 2), (2, 3), (11, 12), (12, 13), (14, 15), (15, 16)]
    total = sum(torch.linalg.vector_norm(body17[:, a] - body17[:, b], dim=-1) for a, b in pairs) / 2
    return (total / LIMB_REF_M).clamp(*BODY_FACTOR_CLIP)


def compose(body17: torch.Tensor, left_hands: torch.Tensor, right_hands: torch.Tensor,
            faces: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Whole-body poses from bodies and canonical parts (the recipe in the module docstring).

    Args:
        body17: (B, 17, 3) Human3.6M-17 joints, metres, a z-up world frame (Human3.6M's;
            any origin).
        left_hands, right_hands: (B, 21, 3) canonical RIGHT hands (:func:`load_fpha_hands`),
            metres; the left ones are mirrored here.
        faces: (B, 68, 3) canonical faces (:func:`load_aflw_faces`), ex-ex units.
        gen: generator for the random toe-out, hand twist and wrist angles, and size jitter
            (on the tensors' device).
    Returns:
        (B, 133, 3) COCO-WholeBody-133 in the same frame and unit as ``body17``.
    """
    b, dev = len(body17), body17.device
    if body17.shape[1:] != (17, 3) or left_hands.shape != (b, 21, 3) or right_hands.shape != (b, 21, 3) \
            or faces.shape != (b, 68, 3):
        raise WsgcnError(f"compose needs bodies (B,17,3), hands (B,21,3), faces (B,68,3); got "
                         f"{tuple(body17.shape)}, {tuple(left_hands.shape)}, {tuple(right_hands.shape)}, "
                         f"{tuple(faces.shape)}")
    out = body17.new_zeros(b, NUM_KEYPOINTS, 3)
    for coco, h36 in COCO_FROM_H36M.items():
        out[:, coco] = body17[:, h36]
    up = body17.new_tensor([0.0, 0.0, 1.0]).expand(b, 3)
    lr = (body17[:, 4] - body17[:, 1]) + (body17[:, 11] - body17[:, 14])    # towards the left
    fwd = torch.linalg.cross(lr, up)
    fwd = _unit(fwd * fwd.new_tensor([1.0, 1.0, 0.0]))                      # horizontal forward
    left_axis = _unit(lr)
    size = body_factor(body17)[:, None]

    # Face on the head frame (thorax 8, neck/nose 9, head 10).
    j8, j9, j10 = body17[:, 8], body17[:, 9], body17[:, 10]
    h_left = _unit(torch.linalg.cross(j10 - j9, j9 - j8))
    h_up = j10 - j8
    h_up = _unit(h_up - _dot(h_up, h_left) * h_left)
    h_fwd = torch.linalg.cross(h_left, h_up)
    ca, sa = math.cos(math.radians(FACE_PITCH_DEG)), math.sin(math.radians(FACE_PITCH_DEG))
    f_up, f_fwd = ca * h_up + sa * h_fwd, -sa * h_up + ca * h_fwd
    s_face = FACE_EYE_CORNER_M * size * (1 + FACE_SCALE_JITTER * torch.randn(b, 1, generator=gen, device=dev))
    origin = j9 + s_face * (FACE_OFFSET[0] * h_left + FACE_OFFSET[1] * h_up + FACE_OFFSET[2] * h_fwd)
    axes = torch.stack([h_left, f_up, f_fwd], 1)                           # (B, 3, 3) rows
    face = origin[:, None] + s_face[:, None] * (faces @ axes)
    out[:, 23:91] = face
    out[:, 0] = face[:, 30]
    out[:, 1] = face[:, 42:48].mean(1)
    out[:, 2] = face[:, 36:42].mean(1)
    for ear, corner, sign in ((3, 45, 1.0), (4, 36, -1.0)):
        off = sign * EAR_OFFSET[0] * h_left + EAR_OFFSET[1] * f_up + EAR_OFFSET[2] * f_fwd
        out[:, ear] = face[:, corner] + s_face * off

    # Feet from ankle, knee, hip and the body's orientation.
    for (hip, knee, ankle), first, sign in ((_LEG["left"], 17, 1.0), (_LEG["right"], 20, -1.0)):
        a, k, h = body17[:, ankle], body17[:, knee], body17[:, hip]
        shank = torch.linalg.vector_norm(k - a, dim=-1, keepdim=True)
        line = _unit(h - a)
        offset = (k - a) - _dot(k - a, line) * line
        offset_h = offset * offset.new_tensor([1.0, 1.0, 0.0])
        w = (torch.linalg.vector_norm(offset_h, dim=-1, keepdim=True) / (KNEE_CUE_SHARE * shank)).clamp(max=1.0)
        w = w * (_dot(offset_h, fwd) > 0)
        d = _unit((1 - w) * fwd + w * _unit(offset_h))
        toe_out = _clipped_normal(b, (TOE_OUT_DEG[1], 3 * TOE_OUT_DEG[1]), gen, dev, TOE_OUT_DEG[0])
        d = _rotate(d, up, sign * toe_out)                                  # + turns towards the left
        s = _unit(k - a)
        perp = d - _dot(d, s) * s
        d = _unit(d + _unit(perp))
        u = _unit(up - _dot(up, d) * d)
        out_dir = sign * torch.linalg.cross(u, d)                           # outward of this foot
        for j, (al, hi, lat) in enumerate((FOOT_BIG_TOE, FOOT_SMALL_TOE, FOOT_HEEL)):
            out[:, first + j] = a + shank * (al * d + hi * u + lat * out_dir)

    # Hands on the wrists.
    for side, hands, base, sign in (("left", left_hands, 91, -1.0), ("right", right_hands, 112, 1.0)):
        sh, el, wr = (body17[:, i] for i in _ARM[side])
        f = _unit(wr - el)
        medial = sign * left_axis                                           # right arm: medial = left
        flex_axis = sign * torch.linalg.cross(_unit(sh - el), f)            # |.| = sin(elbow angle)
        straight = 1 - torch.linalg.vector_norm(flex_axis, dim=-1, keepdim=True)
        ref = flex_axis + straight * medial
        palm = _unit(ref - _dot(ref, f) * f)
        twist = torch.deg2rad(HAND_TWIST_DEG * (2 * torch.rand(b, generator=gen, device=dev) - 1))
        palm = _rotate(palm, f, twist)
        radial = torch.linalg.cross(f, palm)
        phi = _clipped_normal(b, WRIST_FLEX_DEG, gen, dev)[:, None]
        psi = _clipped_normal(b, WRIST_DEVIATION_DEG, gen, dev)[:, None]
        e1 = phi.cos() * f + phi.sin() * palm                               # flexion: towards the palm
        e2 = -phi.sin() * f + phi.cos() * palm
        e1, e3 = psi.cos() * e1 + psi.sin() * radial, -psi.sin() * e1 + psi.cos() * radial
        if side == "left":
            e3 = -e3                                                        # mirror: radial flips
        scale = size * (1 + HAND_SCALE_JITTER * torch.randn(b, 1, generator=gen, device=dev))
        axes = torch.stack([e1, e2, e3], 1)
        out[:, base:base + 21] = wr[:, None] + scale[:, None] * (hands @ axes)
    return out


# ---------------------------------------------------------------------------------------
# Bodies and cameras
# ---------------------------------------------------------------------------------------

def load_h36m_bodies(subjects, root: str | Path | None = None, stride: int = 1):
    """Human3.6M-17 3D of ``subjects`` (every ``stride``-th frame), world frame.

    Returns (world (N, 17, 3) float32 metres in Human3.6M's world frame (z up, absolute
    positions), subject (N,) int16 index into ``subjects``). Read through
    :func:`wsgcn_cli.data.h36m.load` (one camera) and turned back to the world with that
    camera (exact to float32 rounding). Raises WsgcnError if a file is missing.
    """
    from wsgcn_cli.camera import camera_to_world
    from wsgcn_cli.data import h36m

    root = Path(root) if root else default_root()
    data = h36m.load(tuple(subjects), root=root / "h36m", stride=stride, cameras=h36m.CAMERAS[:1], with_sh=False)
    cams = h36m.load_cameras(root / "h36m")
    world = np.empty(data.pose3d.shape, np.float32)
    for si, s in enumerate(data.subjects):
        sel = data.subject == si
        cam = cams[(s, h36m.CAMERAS[0])]
        world[sel] = camera_to_world(data.pose3d[sel].astype(np.float64), cam.R, cam.T) / 1000.0
    return world, data.subject.astype(np.int16)


def h36m_camera_tensors(subjects, root: str | Path | None = None, device="cpu") -> dict:
    """The four Human3.6M cameras of each subject as tensors indexed [subject, camera]:
    ``R`` (S, 4, 3, 3) world -> camera, ``T`` (S, 4, 3) camera centre in metres (world,
    z up), ``f``, ``c`` (S, 4, 2) px, ``k`` (S, 4, 3), ``p`` (S, 4, 2), ``size`` (S, 4, 2)
    width, height px. Camera order: :data:`wsgcn_cli.data.h36m.CAMERAS`."""
    from wsgcn_cli.data import h36m

    root = Path(root) if root else default_root()
    cams = h36m.load_cameras(root / "h36m")
    rows = [[cams[(s, c)] for c in h36m.CAMERAS] for s in subjects]
    get = lambda fn: torch.tensor(np.array([[fn(c) for c in r] for r in rows]), dtype=torch.float32,  # noqa: E731
                                  device=device)
    return {"R": get(lambda c: c.R), "T": get(lambda c: c.T / 1000.0), "f": get(lambda c: c.f),
            "c": get(lambda c: c.c), "k": get(lambda c: c.k), "p": get(lambda c: c.p),
            "size": get(lambda c: [c.width, c.height])}


# ---------------------------------------------------------------------------------------
# Detector-like 2D
# ---------------------------------------------------------------------------------------

@dataclass
class DetectorNoise:
    """Detector-like corruption of clean whole-body 2D (all fractions of the body's 2D
    scale ``s``: the RMS distance of the body keypoints 0-16 from the 2D pelvis, about
    0.3 x the person's height in the image; for a Human3.6M view, s is about 100 px).

    Per keypoint Gaussian noise (std per axis): ``body`` (0-16), ``feet`` (17-22),
    ``face`` (23-90), ``hands`` (91-132); plus one shift per face / hand (``face_shift``,
    ``hand_shift``: a part found slightly off, as a landmark model on a misplaced crop).
    For its own size a face (about 0.25 s wide) or hand (0.3 s long) is noisier than the
    body. ``gross_probability``: per body/foot keypoint, a jump of N(0, ``gross_std``)
    (a limb confused). Missing parts, as MediaPipe Holistic misses them: the whole face
    (``drop_face``), each hand (``drop_hand``), each foot's three points (``drop_foot``),
    each body keypoint (``drop_joint``); a missing keypoint is NaN with score 0.
    Score of a kept keypoint: ``1 / (1 + (e / 2 sigma)^2)`` of its displacement ``e``
    against its part's ``sigma`` (a confident detector is usually right), times
    :data:`wsgcn_cli.pose2d.wholebody.ESTIMATED_SCORE_FACTOR` for the small toes (as the
    2D mapping scores its estimated small toes).
    """

    body: float = 0.04
    feet: float = 0.05
    face: float = 0.008
    hands: float = 0.012
    face_shift: float = 0.015
    hand_shift: float = 0.025
    gross_probability: float = 0.01
    gross_std: float = 0.3
    drop_face: float = 0.3
    drop_hand: float = 0.35
    drop_foot: float = 0.1
    drop_joint: float = 0.02

    def apply(self, uv: torch.Tensor, gen: torch.Generator):
        """Clean 2D (B, 133, 2) px -> (noisy 2D (B, 133, 2) px with NaN where missing,
        scores (B, 133) in [0, 1], 0 where missing)."""
        b, dev = len(uv), uv.device
        pelvis = uv[:, list(PELVIS)].mean(1, keepdim=True)
        s = (uv[:, :17] - pelvis).pow(2).sum(-1).mean(1).sqrt()[:, None, None]   # (B, 1, 1)
        sigma = uv.new_empty(NUM_KEYPOINTS)
        sigma[:17], sigma[17:23], sigma[23:91], sigma[91:] = self.body, self.feet, self.face, self.hands
        e = sigma[:, None] * torch.randn(uv.shape, generator=gen, device=dev)
        shift = torch.randn(b, 3, 2, generator=gen, device=dev)
        e[:, 23:91] += self.face_shift * shift[:, None, 0]
        e[:, 91:112] += self.hand_shift * shift[:, None, 1]
        e[:, 112:] += self.hand_shift * shift[:, None, 2]
        gross = torch.rand(b, 23, generator=gen, device=dev) < self.gross_probability
        e[:, :23] += gross[..., None] * self.gross_std * torch.randn(b, 23, 2, generator=gen, device=dev)
        part_sigma = sigma.clone()
        part_sigma[23:91] = math.hypot(self.face, self.face_shift)
        part_sigma[91:] = math.hypot(self.hands, self.hand_shift)
        score = 1 / (1 + (torch.linalg.vector_norm(e, dim=-1) / (2 * part_sigma).clamp(min=1e-12)).pow(2))
        score[:, list(ESTIMATED_KEYPOINTS)] *= ESTIMATED_SCORE_FACTOR
        missing = torch.rand(b, NUM_KEYPOINTS, generator=gen, device=dev) < self.drop_joint
        missing[:, 23:] = False
        parts = torch.rand(b, 5, generator=gen, device=dev)
        missing[:, 17:20] |= (parts[:, 0] < self.drop_foot)[:, None]
        missing[:, 20:23] |= (parts[:, 1] < self.drop_foot)[:, None]
        missing[:, 23:91] = (parts[:, 2] < self.drop_face)[:, None]
        missing[:, 91:112] = (parts[:, 3] < self.drop_hand)[:, None]
        missing[:, 112:] = (parts[:, 4] < self.drop_hand)[:, None]
        kp = torch.where(missing[..., None], torch.full_like(uv, float("nan")), uv + s * e)
        return kp, torch.where(missing, torch.zeros_like(score), score)


#: No corruption: clean 2D, every keypoint present with score 1.
NO_NOISE = DetectorNoise(body=0, feet=0, face=0, hands=0, face_shift=0, hand_shift=0, gross_probability=0,
                         drop_face=0, drop_hand=0, drop_foot=0, drop_joint=0)


@dataclass
class WholeBodyBatch:
    """One batch of composite whole-body samples (B samples, 133 keypoints).

    Attributes:
        kp2d: (B, 133, 2) px, detector-like (noise, NaN where missing); image frame.
        score: (B, 133) in [0, 1]; 0 where missing.
        kp2d_clean: (B, 133, 2) px, the exact projection of the 3D.
        pose3d: (B, 133, 3) metres, camera frame (x right, y down, z forward),
            root-relative (pelvis = mean of keypoints 11, 12).
        root: (B, 3) metres, the pelvis in the camera frame.
        focal, principal: (B, 2) px pinhole intrinsics (Human3.6M samples are also
            distorted by ``k`` (B, 3), ``p`` (B, 2); zero for virtual cameras).
        image_size: (B, 2) width, height px.
        virtual: (B,) bool, True where the camera is a random virtual one.
        camera: (B,) int64 index into :data:`wsgcn_cli.data.h36m.CAMERAS` of the
            Human3.6M camera (-1 for virtual cameras); subject: (B,) int64 index into the
            composite's ``subjects``.
        labelled: (133,) bool, :data:`LABELLED` (False where the 3D is synthesised).
    """

    kp2d: torch.Tensor
    score: torch.Tensor
    kp2d_clean: torch.Tensor
    pose3d: torch.Tensor
    root: torch.Tensor
    focal: torch.Tensor
    principal: torch.Tensor
    k: torch.Tensor
    p: torch.Tensor
    image_size: torch.Tensor
    virtual: torch.Tensor
    camera: torch.Tensor
    subject: torch.Tensor
    labelled: torch.Tensor


class WholeBodyComposite:
    """Composite whole-body training data of one split (module docstring), on a device.

    ``split="train"``: Human3.6M S1 S5 S6 S7 S8, FPHA subjects 1-5, AFLW2000-3D faces
    0-1599; ``"test"``: S9 S11, FPHA subject 6, faces 1600-1999. Each body sample
    (a Human3.6M frame, every ``stride``-th) gets a random hand for each side and a random
    face at every :meth:`batch` call, so the parts are re-drawn each epoch; for a fixed
    evaluation set, pass a generator with a fixed seed.

    Attributes: ``body`` (N, 17, 3) metres world (z up), ``subject`` (N,) int64,
    ``hands`` (H, 21, 3) canonical right hands m, ``faces`` (F, 68, 3) canonical ex-ex
    units, ``cameras`` (:func:`h36m_camera_tensors`), ``build_seconds``.
    Raises WsgcnError if a source file is missing.
    """

    def __init__(self, split: str = "train", device="cpu", root: str | Path | None = None, stride: int = 1):
        from wsgcn_cli.data import h36m

        if split not in ("train", "test"):
            raise WsgcnError(f"unknown split {split!r}; use 'train' or 'test'")
        t0 = time.perf_counter()
        self.split, self.device = split, torch.device(device)
        self.subjects = h36m.TRAIN_SUBJECTS if split == "train" else h36m.TEST_SUBJECTS
        body, subject = load_h36m_bodies(self.subjects, root, stride)
        hands = load_fpha_hands(FPHA_TRAIN_SUBJECTS if split == "train" else FPHA_TEST_SUBJECTS, root)
        faces = load_aflw_faces(split, root)
        dev = self.device
        self.body = torch.from_numpy(body).to(dev)
        self.subject = torch.from_numpy(subject.astype(np.int64)).to(dev)
        self.hands = torch.from_numpy(hands).to(dev)
        self.faces = torch.from_numpy(faces).to(dev)
        self.cameras = h36m_camera_tensors(self.subjects, root, dev)
        self.labelled = torch.from_numpy(LABELLED).to(dev)
        self.build_seconds = time.perf_counter() - t0

    def __len__(self) -> int:
        return len(self.body)

    def nbytes(self) -> int:
        """Bytes held by the arrays (bodies, hands, faces)."""
        return sum(t.numel() * t.element_size() for t in (self.body, self.subject, self.hands, self.faces))

    def compose(self, idx: torch.Tensor, gen: torch.Generator, bone_scale: float = 0.0) -> torch.Tensor:
        """Whole-body poses (B, 133, 3) metres, Human3.6M world frame (z up, absolute) of
        the body samples ``idx`` (B,) with freshly drawn hands and faces; ``bone_scale``
        scales the body's bones first (:func:`wsgcn_cli.data.augment.scale_bones`)."""
        body = self.body[idx]
        if bone_scale > 0:
            root = body[:, :1]
            body = scale_bones(body - root, bone_scale, gen) + root
        b, dev = len(idx), self.device
        pick = lambda n: torch.randint(n, (b,), generator=gen, device=dev)  # noqa: E731
        return compose(body, self.hands[pick(len(self.hands))], self.hands[pick(len(self.hands))],
                       self.faces[pick(len(self.faces))], gen)

    def batch(self, idx: torch.Tensor, gen: torch.Generator, virtual_probability: float = 0.5,
              noise: DetectorNoise = DetectorNoise(), bone_scale: float = 0.0,
              ranges: VirtualCameraRanges = VirtualCameraRanges()) -> WholeBodyBatch:
        """Composite samples ``idx`` (B,) seen by a camera, with detector-like 2D.

        Each sample is seen, with probability ``virtual_probability``, by a random virtual
        camera (``ranges``), else by a random one of its subject's four Human3.6M cameras.
        ``noise``: :class:`DetectorNoise` (:data:`NO_NOISE` for clean 2D).
        """
        idx = torch.as_tensor(idx, device=self.device)
        b, dev = len(idx), self.device
        world = self.compose(idx, gen, bone_scale)
        pelvis = world[:, list(PELVIS)].mean(1, keepdim=True)
        cam = torch.randint(4, (b,), generator=gen, device=dev)
        sub = self.subject[idx]
        c = {k: v[sub, cam] for k, v in self.cameras.items()}
        xc = torch.einsum("bij,bnj->bni", c["R"], world - c["T"][:, None])   # camera.world_to_camera, batched
        uv = project(xc, c["f"][:, None], c["c"][:, None], c["k"][:, None], c["p"][:, None])
        root = xc[:, list(PELVIS)].mean(1)
        pose = xc - root[:, None]
        focal, principal, k, p, size = c["f"], c["c"], c["k"], c["p"], c["size"]
        virtual = torch.rand(b, generator=gen, device=dev) < virtual_probability
        if virtual.any():
            uv_v, pose_v, vc = virtual_view(world - pelvis, gen, ranges, return_camera=True)
            root_v = torch.cat([(vc["target"] - vc["principal"]) / vc["focal"][:, None] * vc["depth"][:, None],
                                vc["depth"][:, None]], -1)
            v1, v2 = virtual[:, None], virtual[:, None, None]
            uv, pose = torch.where(v2, uv_v, uv), torch.where(v2, pose_v, pose)
            root = torch.where(v1, root_v, root)
            focal = torch.where(v1, vc["focal"][:, None].expand(b, 2), focal)
            principal = torch.where(v1, vc["principal"], principal)
            k, p = torch.where(v1, torch.zeros_like(k), k), torch.where(v1, torch.zeros_like(p), p)
            size = torch.where(v1, size.new_tensor([ranges.width, ranges.width]).expand(b, 2), size)
        kp2d, score = noise.apply(uv, gen)
        return WholeBodyBatch(kp2d=kp2d, score=score, kp2d_clean=uv, pose3d=pose, root=root, focal=focal,
                              principal=principal, k=k, p=p, image_size=size, virtual=virtual,
                              camera=torch.where(virtual, -1, cam), subject=sub, labelled=self.labelled)
