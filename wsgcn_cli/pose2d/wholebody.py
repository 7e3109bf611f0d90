"""MediaPipe (BlazePose-33 + face mesh 468 + hands 21) -> COCO-WholeBody-133, in pixels.

The tables here say where each of the 133 COCO-WholeBody keypoints (layout
``coco_wholebody133``, see ``shared/CONVENTIONS.md``) comes from in MediaPipe's
outputs; :func:`assemble_wholebody` applies them to one frame and
:class:`wsgcn_cli.detect.holistic.HolisticDetector` runs the models. Coordinates stay in
pixels of the image frame (origin top-left, x right, y down). A part that was not seen is
NaN with score 0. "Left" is always the person's left.

Body 0-16 (:data:`BODY17_FROM_BLAZEPOSE`)
    COCO-17's keypoints are BlazePose landmarks of the same name: nose 0, left/right eye
    2/5 (the eye centres, not the inner/outer corners), ears 7/8, shoulders 11/12, elbows
    13/14, wrists 15/16, hips 23/24, knees 25/26, ankles 27/28. Score: BlazePose
    visibility.

Feet 17-22
    big toe <- BlazePose ``foot_index`` (31/32, the tip of the foot), heel <- ``heel``
    (29/30); scores: their visibility. BlazePose has no small toe: it is **estimated**
    (:data:`ESTIMATED_KEYPOINTS`) as the affine combination
    ``big_toe + SMALL_TOE_BACK * (heel - big_toe) + SMALL_TOE_OUT * (hip - other_hip)``
    (back along the foot and outwards along the hip line, so it follows the body's turn
    in the image), with score ``ESTIMATED_SCORE_FACTOR * min(`` the four keypoints'
    visibilities ``)`` -- at most half of a seen keypoint's score: that is the flag a
    consumer can threshold on. The two constants were fitted by least squares on
    COCO-WholeBody ground truth (H3WB ``h3wb_train_sub``: one distinct pose, and the 3
    people with all feet and hips labelled in ``wholebody/test_coco_wholebody.json``;
    residual 2-6 px on those people, 2D only, so few samples: a rough estimate).

Face 23-90 (:data:`FACE68_FROM_MESH468`)
    COCO-WholeBody's 68 face points are the iBUG 300-W / Multi-PIE 68 in their order
    (jaw 0-16 from the subject's right ear to the left, right brow 17-21, left brow
    22-26, nose bridge 27-30, nostrils 31-35, right eye 36-41, left eye 42-47, outer lip
    48-59, inner lip 60-67; "right" is the subject's right, on the image's left in a
    frontal view). Each is one vertex of MediaPipe's 468-vertex face mesh. The table is
    the correspondence in wide public use (e.g. LatentSync 1.5, ByteDance, Apache-2.0:
    ``LM68_FROM_MP478``; the same list appears in several face-swap and lip-sync tools),
    checked here: ``tests/test_wholebody_2d.py`` runs the face mesh on real faces and
    checks the ordering (jaw runs right-to-left with the chin lowest, brows above eyes,
    eyes above the nose tip above the mouth, mouth corners outside the inner lip), the
    left/right symmetry (every point and its 300-W mirror partner lie on opposite sides of
    the nose line at similar distances) and the error against COCO-WholeBody's
    hand-labelled faces (``benchmarks/wholebody_2d.py``). Known bias of the table: jaw
    points 0/16 (vertices 162/389) sit at the temples, about level with the brows, higher
    than 300-W's (at the top of the ear); seen on the astronaut image.
    Face score: the face landmark model's presence when it was run on an ROI placed from
    the body (:mod:`wsgcn_cli.detect.holistic`); otherwise (Holistic's face, or the face
    mesh on a crop: neither gives a score) the mean visibility of BlazePose's nose and eyes.

Hands 91-111 (left), 112-132 (right) (:data:`HAND21_FROM_MEDIAPIPE`)
    MediaPipe's 21 hand landmarks are in COCO-WholeBody's order already: wrist 0, thumb
    CMC/MCP/IP/tip 1-4, index MCP/PIP/DIP/tip 5-8, middle 9-12, ring 13-16, pinky 17-20
    (COCO-WholeBody: wrist, thumb1-4, forefinger1-4, middle_finger1-4, ring_finger1-4,
    pinky_finger1-4, root to tip). So the table is the identity. Hand score: the hand
    model's presence when run on an ROI, else (Holistic's hands, palm detector +
    hand model on a crop) the BlazePose wrist's visibility.

Gaps: :func:`fill_wholebody_gaps` fills short runs of missing keypoints over time with
:func:`wsgcn_cli.pose2d.gaps.fill_gaps` (the body's gap filler), per keypoint; the face
and hands relative to their anchors on the body (:data:`PART_ANCHORS`: nose, wrists), so
that a face lost for a few frames while the person squats moves down with the head
instead of staying where it was last seen.
"""

from __future__ import annotations

import numpy as np

from wsgcn_cli.detect.base import Keypoints2D
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.skeletons import FACE68_FLIP  # noqa: F401  (the face's mirror pairs)

NUM_KEYPOINTS = 133

#: COCO-WholeBody index ranges of each part.
BODY = slice(0, 17)
FEET = slice(17, 23)
FACE = slice(23, 91)
LEFT_HAND = slice(91, 112)
RIGHT_HAND = slice(112, 133)

#: BlazePose-33 index of each COCO-17 body keypoint (COCO-WholeBody 0-16).
BODY17_FROM_BLAZEPOSE = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)

#: (COCO-WholeBody index, BlazePose index) of the measured foot keypoints.
FEET_FROM_BLAZEPOSE = ((17, 31), (19, 29), (20, 32), (22, 30))

#: Small toe = big_toe + SMALL_TOE_BACK (heel - big_toe) + SMALL_TOE_OUT (hip - other_hip).
SMALL_TOE_BACK = 0.14
SMALL_TOE_OUT = 0.14

#: Keypoints not measured by any model but estimated from others (the small toes).
ESTIMATED_KEYPOINTS = (18, 21)

#: An estimated keypoint's score is this times the smallest score it is made from.
ESTIMATED_SCORE_FACTOR = 0.5

#: Face-mesh (468) vertex of each iBUG 300-W 68 face point, in 300-W order
#: (COCO-WholeBody 23 + i). Source and checks: module docstring.
FACE68_FROM_MESH468 = (
    # jaw 0-16: subject's right (upper ear) -> chin (8, vertex 152) -> subject's left
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
    # right brow 17-21 (outer -> inner), left brow 22-26 (inner -> outer)
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,
    # nose bridge 27-30 (top -> tip), nostrils 31-35 (subject's right -> left)
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    # right eye 36-41 (outer corner, upper lid x2, inner corner, lower lid x2)
    33, 160, 158, 133, 153, 144,
    # left eye 42-47 (inner corner, upper lid x2, outer corner, lower lid x2)
    362, 385, 387, 263, 373, 380,
    # outer lip 48-59 (right corner, upper lip, left corner, lower lip)
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    # inner lip 60-67
    78, 82, 13, 312, 308, 317, 14, 87,
)

#: MediaPipe hand landmark of each COCO-WholeBody hand keypoint: the identity.
HAND21_FROM_MEDIAPIPE = tuple(range(21))


def _nan(shape):
    return np.full(shape, np.nan, np.float32)


def _check(name, arr, rows):
    if arr is None:
        return None
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != rows or arr.shape[1] < 2:
        raise WsgcnError(f"{name} must be ({rows}, 2) pixel coordinates, got {arr.shape}")
    return arr[:, :2]


def assemble_wholebody(body_xy, body_score, face_xy=None, face_score: float = 0.0,
                       left_hand_xy=None, left_hand_score: float = 0.0,
                       right_hand_xy=None, right_hand_score: float = 0.0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """One frame's COCO-WholeBody-133 keypoints from MediaPipe's outputs.

    Args:
        body_xy: (33, 2) BlazePose landmarks, pixels (image frame); NaN if no person.
        body_score: (33,) BlazePose visibility in [0, 1].
        face_xy: (468, 2) (or 478 with irises) face-mesh vertices, pixels; None if no face.
        face_score: the face's score in [0, 1], given to all 68 face points.
        left_hand_xy, right_hand_xy: (21, 2) MediaPipe hand landmarks, pixels, of the
            person's left / right hand; None if not seen.
        left_hand_score, right_hand_score: the hand's score in [0, 1].

    Returns:
        xy: (133, 2) float32 pixels, NaN where not seen.
        score: (133,) float32 in [0, 1], 0 where not seen; the small toes
        (:data:`ESTIMATED_KEYPOINTS`) at most ``ESTIMATED_SCORE_FACTOR`` x their inputs'.

    Raises:
        WsgcnError: an input of the wrong shape.
    """
    body_xy = _check("body_xy", body_xy, 33)
    body_score = np.asarray(body_score, np.float32).reshape(-1)
    if body_score.shape != (33,):
        raise WsgcnError(f"body_score must be (33,), got {body_score.shape}")
    if face_xy is not None and np.asarray(face_xy).shape[0] == 478:
        face_xy = np.asarray(face_xy)[:468]
    face_xy = _check("face_xy", face_xy, 468)
    hands = [_check("left_hand_xy", left_hand_xy, 21), _check("right_hand_xy", right_hand_xy, 21)]

    xy, score = _nan((NUM_KEYPOINTS, 2)), np.zeros(NUM_KEYPOINTS, np.float32)
    xy[BODY] = body_xy[list(BODY17_FROM_BLAZEPOSE)]
    score[BODY] = body_score[list(BODY17_FROM_BLAZEPOSE)]
    for dst, src in FEET_FROM_BLAZEPOSE:
        xy[dst], score[dst] = body_xy[src], body_score[src]
    for small, toe, heel, hip, other in ((18, 31, 29, 23, 24), (21, 32, 30, 24, 23)):
        xy[small] = (body_xy[toe] + SMALL_TOE_BACK * (body_xy[heel] - body_xy[toe])
                     + SMALL_TOE_OUT * (body_xy[hip] - body_xy[other]))
        score[small] = ESTIMATED_SCORE_FACTOR * body_score[[toe, heel, hip, other]].min()
    if face_xy is not None:
        xy[FACE] = face_xy[list(FACE68_FROM_MESH468)]
        score[FACE] = face_score
    for part, hand, s in ((LEFT_HAND, hands[0], left_hand_score),
                          (RIGHT_HAND, hands[1], right_hand_score)):
        if hand is not None:
            xy[part] = hand[list(HAND21_FROM_MEDIAPIPE)]
            score[part] = s
    missing = ~np.isfinite(xy).all(axis=1)
    xy[missing] = np.nan
    score[missing] = 0.0
    return xy, np.clip(score, 0.0, 1.0)


def part_found(kp: Keypoints2D) -> dict[str, np.ndarray]:
    """(T,) bool per part (``body``, ``face``, ``left_hand``, ``right_hand``): at least
    one keypoint of the part is detected (finite, score > 0) in the frame.

    Raises:
        WsgcnError: ``kp`` is not in the ``coco_wholebody133`` layout.
    """
    if kp.layout != "coco_wholebody133":
        raise WsgcnError(f"expected coco_wholebody133 keypoints, got {kp.layout}")
    det = kp.detected() & (kp.score > 0)
    return {name: det[:, part].any(axis=1) for name, part in
            (("body", BODY), ("face", FACE), ("left_hand", LEFT_HAND),
             ("right_hand", RIGHT_HAND))}


#: Body keypoint each part's gaps are filled relative to: face -> nose, hands -> wrists.
PART_ANCHORS = ((FACE, 0), (LEFT_HAND, 9), (RIGHT_HAND, 10))


def fill_wholebody_gaps(kp: Keypoints2D, max_gap_frames: int, *, anchored: bool = True, **options
                        ) -> tuple[Keypoints2D, np.ndarray]:
    """Short gaps of COCO-WholeBody-133 keypoints filled over time, as for the body.

    :func:`wsgcn_cli.pose2d.gaps.fill_gaps` (same arguments, same result: filled
    keypoints and the (T,) frames still missing a keypoint) for the 133 keypoints, each
    on its own: a hand missing for up to ``max_gap_frames`` frames between two frames
    where it was seen is filled with score ``INTERPOLATED_SCORE``; longer gaps stay NaN
    with score 0. The body and feet (0-22) are filled exactly as
    :func:`~wsgcn_cli.pose2d.gaps.fill_gaps` fills them. With ``anchored`` (default), the
    face and each hand are interpolated relative to their anchor (:data:`PART_ANCHORS`):
    the offset from the anchor detected in the same frame is interpolated and added to
    the anchor (itself gap-filled) in the frame filled; a detection whose anchor is not
    detected in its frame cannot start or end a filled run. Detected keypoints are never
    changed.

    Raises:
        WsgcnError: ``kp`` is not in the ``coco_wholebody133`` layout.
    """
    from wsgcn_cli.pose2d.gaps import fill_gaps

    if kp.layout != "coco_wholebody133":
        raise WsgcnError(f"expected coco_wholebody133 keypoints, got {kp.layout}")
    filled, missing = fill_gaps(kp, max_gap_frames, **options)
    if not anchored:
        return filled, missing
    rel = kp.xy.copy()
    for part, anchor in PART_ANCHORS:
        rel[:, part] -= kp.xy[:, anchor, None]          # NaN where the anchor is not detected
    moved, _ = fill_gaps(Keypoints2D(kp.layout, rel, kp.score, kp.times, kp.width, kp.height, kp.fps),
                         max_gap_frames, **options)
    xy, score = filled.xy.copy(), filled.score.copy()
    for part, anchor in PART_ANCHORS:
        kept = np.isfinite(kp.xy[:, part]).all(axis=-1) & np.isfinite(filled.xy[:, part]).all(axis=-1)
        xy[:, part] = np.where(kept[..., None], filled.xy[:, part], moved.xy[:, part] + filled.xy[:, anchor, None])
        score[:, part] = np.where(kept, filled.score[:, part], moved.score[:, part])
    gone = ~np.isfinite(xy).all(axis=-1)
    xy[gone], score[gone] = np.nan, 0.0
    out = Keypoints2D(kp.layout, xy, score, filled.times, kp.width, kp.height, kp.fps)
    return out, gone.any(axis=1)
