"""Whole-body 2D (COCO-WholeBody-133) from MediaPipe Holistic, with face and hand crops.

:class:`HolisticDetector` is a :class:`~wsgcn_cli.detect.base.Detector` with layout
``coco_wholebody133`` (registered as ``"mediapipe_holistic"``). Per frame:

1. **Holistic** (``mediapipe.solutions.holistic``, model_complexity 1, every model in the
   wheel: BlazePose full, face landmarks, hand landmarks full, hand re-crop): the
   BlazePose-33 body, and the 468-vertex face mesh and the 21-landmark hands when its
   own ROIs (made from the body) pass its thresholds. Holistic's ``left_hand`` is the
   person's left hand (it is attached to BlazePose's left wrist); checked by the tests.
   With ``body="pose"`` the body comes from BlazePose alone instead
   (:class:`~wsgcn_cli.detect.mediapipe_pose.MediaPipePoseDetector`, the ``body17``
   detector: the same graph, about half Holistic's time) and every face and hand from the
   steps below; ``pipelines/wholebody.toml`` uses it, for speed
   (``benchmarks/results/wholebody_speed.json``).
2. **ROIs** (``rois=True``), for each part the body model missed whose body anchors are seen
   (BlazePose visibility >= ``min_anchor_score``): the wheel's landmark model alone
   (``hand_landmark_full.tflite`` 224 px, ``face_landmark.tflite`` 192 px, run with LiteRT
   as in :mod:`wsgcn_cli.detect.multi_person`) on a rotated square placed from the body,
   kept if the model's presence is >= :data:`MIN_ROI_PRESENCE`:

   * hand: MediaPipe's own recipe for hands from the pose (Holistic's
     ``HandDetectionsFromPoseToRectsCalculator``): middle finger estimated as
     ``(2 index + pinky) / 3``, the square centred there, turned so that wrist -> middle
     finger points up, side ``HAND_ROI_SCALE`` x |wrist - middle finger| (MediaPipe: 2,
     then x 2.7 in Holistic, = 5.4, followed by its ``hand_recrop`` model; on the Sports2D
     clip, the landmark model alone found a hand in 24 / 37 frames (left / right) with
     4.0, in 7 / 12 with 5.4, presence >= 0.5). The hand is kept only if its wrist is
     nearer to this side's body wrist than to the other's;
   * face: centred at the mean of the eyes and mouth corners, turned by the eye line,
     side ``FACE_ROI_SCALE`` x max(ear-to-ear, 2.5 x eye-to-eye distance).

3. **Crops** (``crops=True``), for what is still missing: an axis-aligned square crop around the part,
   resized to :data:`CROP_SIZE` pixels, run through the wheel's palm detector + hand
   landmark model (``solutions.hands.Hands``, image mode, one hand) or face detector +
   face mesh (``solutions.face_mesh.FaceMesh``, image mode, one face):

   * hand: centred at ``wrist + HAND_CENTRE * (wrist - elbow)``, side
     ``HAND_SIDE * |wrist - elbow|`` (at least :data:`MIN_CROP_PX`), so the hand fits
     whatever the wrist's bend. The hand found is kept only if its wrist landmark is
     within ``HAND_MAX_WRIST_DIST`` x the forearm length of the body's wrist and nearer
     to it than to the other wrist (so one hand is not given to both sides);
   * face: centred at the mean of the seen nose and ears, side ``FACE_SIDE`` x the
     largest of the ear-to-ear, nose-to-ear and (x 0.5) shoulder-to-shoulder distances.
     The face found is kept only if its box contains the body's nose.

4. **Mapping** to the 133 keypoints: :func:`wsgcn_cli.pose2d.wholebody.assemble_wholebody`
   (tables and sources there). Scores: body and feet, BlazePose visibility (small toes:
   estimated, half score); a face or hand from an ROI, the model's presence; otherwise
   (Holistic and the crops give no score) the mean visibility of BlazePose's nose and
   eyes for the face and the wrist's visibility for a hand. A part not seen is NaN with
   score 0. Per part, one landmark model run is the unit: no per-landmark confidence.

Recall and speed (``benchmarks/wholebody_2d.py`` -> ``benchmarks/results/wholebody_2d.json``)
are in the README ("Whole body (2D, in progress)").

Video (``static_image_mode=False``) tracks the body and Holistic's parts from frame to
frame (frames in order, one size); ROIs and crops are always run as single images.
MediaPipe's hand models are trained on bare hands: gloved hands (skiers, a batter in the
COCO images) get a presence below 0.01 and are not found. mediapipe
is imported when a detector is created. Nothing is downloaded: every model is in the wheel.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from wsgcn_cli.detect.mediapipe_pose import _import_mediapipe, quiet_native_stderr
from wsgcn_cli.detect.multi_person import _crop, _mediapipe_dir, _Model, _sigmoid
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.pose2d.wholebody import assemble_wholebody

#: Side in pixels the face and hand crops are resized to before the models see them.
CROP_SIZE = 256
#: Smallest crop side in source pixels.
MIN_CROP_PX = 32
#: Hand crop: centre = wrist + HAND_CENTRE (wrist - elbow); side = HAND_SIDE |wrist - elbow|.
HAND_CENTRE = 0.35
HAND_SIDE = 1.5
#: A crop's hand is kept if its wrist lies within this x forearm length of the body wrist.
HAND_MAX_WRIST_DIST = 0.5
#: Face crop side = FACE_SIDE x the head size (see the module docstring).
FACE_SIDE = 3.0

#: Hand ROI for the landmark model alone: side = HAND_ROI_SCALE x |wrist - middle finger|.
HAND_ROI_SCALE = 4.0
#: Face ROI for the landmark model alone: side = FACE_ROI_SCALE x the head size.
FACE_ROI_SCALE = 1.6
#: Presence (in [0, 1]) the landmark models must give on an ROI for the part to be kept.
MIN_ROI_PRESENCE = 0.5

# BlazePose indices
_NOSE, _LEYE, _REYE, _LEAR, _REAR = 0, 2, 5, 7, 8
_LMOUTH, _RMOUTH = 9, 10
_LSH, _RSH, _LELB, _RELB, _LWR, _RWR = 11, 12, 13, 14, 15, 16
_LPINKY, _RPINKY, _LINDEX, _RINDEX = 17, 18, 19, 20


def _landmarks(landmark_list, width: int, height: int) -> np.ndarray | None:
    if landmark_list is None:
        return None
    return np.array([(p.x * width, p.y * height) for p in landmark_list.landmark], np.float32)


def _square_crop(image: np.ndarray, centre, side: float):
    """Axis-aligned square crop (zero-padded outside the image) resized to CROP_SIZE;
    returns (crop, (x0, y0, scale)) with source = x0 + crop_px * scale."""
    import cv2

    side = max(float(side), MIN_CROP_PX)
    x0, y0 = float(centre[0]) - side / 2, float(centre[1]) - side / 2
    s = side / CROP_SIZE
    matrix = np.array([[1 / s, 0, -x0 / s], [0, 1 / s, -y0 / s]], np.float64)
    crop = cv2.warpAffine(image, matrix, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return crop, (x0, y0, s)


class HolisticDetector:
    """COCO-WholeBody-133 keypoints of one person per frame (MediaPipe Holistic + crops).

    Args:
        static_image_mode: True for unrelated images, False for video (tracking).
        body: ``"holistic"`` (MediaPipe Holistic: the body, and a face and hands where its
            own ROIs find them) or ``"pose"`` (BlazePose alone, as the ``body17``
            pipeline; faces and hands only from ``rois`` / ``crops``).
        rois: run the hand and face landmark models on ROIs placed from the body for the
            parts still missing (module docstring, step 2).
        crops: then run MediaPipe's palm / face detector + landmark graphs on crops for the
            parts still missing (step 3). ``rois=False, crops=False``: Holistic alone.
        min_detection_confidence, min_tracking_confidence: Holistic's thresholds in [0, 1].
        min_anchor_score: BlazePose visibility the anchors of a crop need, in [0, 1].
        verbose: let MediaPipe's native log lines through.

    Attributes:
        layout: ``"coco_wholebody133"``.
        last_sources: after each :meth:`detect`, where each part came from:
            ``{"face"|"left_hand"|"right_hand": "holistic" | "roi" | "crop" | None}``.

    Raises:
        WsgcnError: mediapipe (or, with ``rois``, ai-edge-litert) missing, or an option
            out of range (``body`` neither ``"holistic"`` nor ``"pose"``).
    """

    layout = "coco_wholebody133"

    def __init__(self, static_image_mode: bool = False, crops: bool = True,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 min_anchor_score: float = 0.3, verbose: bool = False, body: str = "holistic",
                 rois: bool = True):
        for name, value in (("min_detection_confidence", min_detection_confidence),
                            ("min_tracking_confidence", min_tracking_confidence),
                            ("min_anchor_score", min_anchor_score)):
            if not 0.0 <= float(value) <= 1.0:
                raise WsgcnError(f"{name} must be in [0, 1], not {value}")
        if body not in ("holistic", "pose"):
            raise WsgcnError(f"body must be holistic or pose, not {body!r}")
        mp = _import_mediapipe()
        self.static_image_mode = bool(static_image_mode)
        self.body, self.rois, self.crops = body, bool(rois), bool(crops)
        self.min_anchor_score = float(min_anchor_score)
        self.verbose = bool(verbose)
        self.last_sources: dict = {}
        self._holistic = self._pose = None
        if body == "pose":
            from wsgcn_cli.detect.mediapipe_pose import MediaPipePoseDetector

            self._pose = MediaPipePoseDetector(
                1, self.static_image_mode, min_detection_confidence, min_tracking_confidence,
                smooth_landmarks=True, verbose=self.verbose)
        with quiet_native_stderr(not self.verbose):
            if body == "holistic":
                self._holistic = mp.solutions.holistic.Holistic(
                    static_image_mode=self.static_image_mode, model_complexity=1,
                    smooth_landmarks=True, enable_segmentation=False, refine_face_landmarks=False,
                    min_detection_confidence=min_detection_confidence,
                    min_tracking_confidence=min_tracking_confidence)
            self._hands = self._face = self._hand_roi = self._face_roi = None
            if self.rois:
                modules = _mediapipe_dir() / "modules"
                self._hand_roi = _Model(modules / "hand_landmark" / "hand_landmark_full.tflite", 1)
                self._face_roi = _Model(modules / "face_landmark" / "face_landmark.tflite", 1)
            if self.crops:
                self._hands = mp.solutions.hands.Hands(
                    static_image_mode=True, max_num_hands=1, model_complexity=1,
                    min_detection_confidence=0.3)
                self._face = mp.solutions.face_mesh.FaceMesh(
                    static_image_mode=True, max_num_faces=1, refine_landmarks=False,
                    min_detection_confidence=0.3)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whole-body keypoints of one person.

        Args:
            image: (H, W, 3) uint8 RGB, upright (in video mode: frames in order, one size).

        Returns:
            xy: (133, 2) float32 pixels (image frame), NaN where not seen (all NaN if no
                person was found).
            score: (133,) float32 in [0, 1], 0 where not seen.

        Raises:
            ValueError: not an (H, W, 3) uint8 image. RuntimeError: closed.
        """
        if self._holistic is None and self._pose is None:
            raise RuntimeError("HolisticDetector is closed")
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} "
                             f"{image.dtype}")
        image = np.ascontiguousarray(image)
        h, w = image.shape[:2]
        self.last_sources = {"face": None, "left_hand": None, "right_hand": None}
        if self._pose is not None:  # body="pose": BlazePose alone, parts from ROIs / crops
            body, vis = self._pose.detect(image)
            if not np.isfinite(body).all():
                return assemble_wholebody(body, vis)
            face, hands = None, {"left_hand": None, "right_hand": None}
        else:
            with quiet_native_stderr(not self.verbose):
                res = self._holistic.process(image)
            if res.pose_landmarks is None:
                return assemble_wholebody(np.full((33, 2), np.nan, np.float32),
                                          np.zeros(33, np.float32))
            body = _landmarks(res.pose_landmarks, w, h)
            vis = np.clip([p.visibility for p in res.pose_landmarks.landmark], 0, 1).astype(
                np.float32)
            face = _landmarks(res.face_landmarks, w, h)
            hands = {"left_hand": _landmarks(res.left_hand_landmarks, w, h),
                     "right_hand": _landmarks(res.right_hand_landmarks, w, h)}
        for part in ("face", "left_hand", "right_hand"):
            if (face if part == "face" else hands[part]) is not None:
                self.last_sources[part] = "holistic"
        scores = {"face": float(vis[[_NOSE, _LEYE, _REYE]].mean()),
                  "left_hand": float(vis[_LWR]), "right_hand": float(vis[_RWR])}
        if face is None and self.rois:
            face, presence = self._face_from_roi(image, body, vis)
            if face is not None:
                self.last_sources["face"], scores["face"] = "roi", presence
        if face is None and self.crops:
            face = self._face_from_crop(image, body, vis)
            self.last_sources["face"] = "crop" if face is not None else None
        for part, (wr, el, owr, pk, ix) in (
                ("left_hand", (_LWR, _LELB, _RWR, _LPINKY, _LINDEX)),
                ("right_hand", (_RWR, _RELB, _LWR, _RPINKY, _RINDEX))):
            if hands[part] is None and self.rois:
                hand, presence = self._hand_from_roi(image, body, vis, wr, pk, ix, owr)
                if hand is not None:
                    hands[part] = hand
                    self.last_sources[part], scores[part] = "roi", presence
            if hands[part] is None and self.crops:
                hands[part] = self._hand_from_crop(image, body, vis, wr, el, owr)
                self.last_sources[part] = "crop" if hands[part] is not None else None
        return assemble_wholebody(body, vis, face, scores["face"],
                                  hands["left_hand"], scores["left_hand"],
                                  hands["right_hand"], scores["right_hand"])

    def _run_roi(self, model, image, roi, size, names):
        """Landmarks of ``model`` on the rotated square ``roi`` (cx, cy, side, angle):
        (N, 2) pixels of ``image`` and the model's raw presence output."""
        tensor = _crop(image, roi, (size, size), (0.0, 1.0), True)
        landmarks, presence = model(tensor, names)
        lm = landmarks.reshape(-1, 3)[:, :2] / size
        cx, cy, side, angle = roi
        c, s = math.cos(angle), math.sin(angle)
        pts = np.array([cx, cy]) + side * (lm - 0.5) @ np.array([[c, -s], [s, c]]).T
        return pts.astype(np.float32), float(presence.ravel()[0])

    def _hand_from_roi(self, image, body, vis, wr, pk, ix, owr):
        if min(vis[wr], vis[pk], vis[ix]) < self.min_anchor_score:
            return None, 0.0
        middle = (2 * body[ix] + body[pk]) / 3  # MediaPipe's middle-finger estimate
        d = middle - body[wr]
        length = float(np.hypot(*d))
        if not np.isfinite(length) or length < 1:
            return None, 0.0
        roi = (middle[0], middle[1], max(HAND_ROI_SCALE * length, MIN_CROP_PX),
               math.atan2(d[0], -d[1]))
        hand, presence = self._run_roi(self._hand_roi, image, roi, 224,
                                       ["Identity", "Identity_1"])
        if presence < MIN_ROI_PRESENCE or \
                np.hypot(*(hand[0] - body[wr])) > np.hypot(*(hand[0] - body[owr])):
            return None, 0.0
        return hand, presence

    def _face_from_roi(self, image, body, vis):
        if vis[[_NOSE, _LEYE, _REYE, _LMOUTH, _RMOUTH]].min() < self.min_anchor_score:
            return None, 0.0
        eyes = body[_LEYE] - body[_REYE]
        size = max(np.hypot(*(body[_LEAR] - body[_REAR])), 2.5 * np.hypot(*eyes))
        if not np.isfinite(size) or size < 1:
            return None, 0.0
        centre = body[[_LEYE, _REYE, _LMOUTH, _RMOUTH]].mean(axis=0)
        roi = (centre[0], centre[1], max(FACE_ROI_SCALE * size, MIN_CROP_PX),
               math.atan2(eyes[1], eyes[0]))
        face, logit = self._run_roi(self._face_roi, image, roi, 192, ["conv2d_21", "conv2d_31"])
        presence = float(_sigmoid(logit))
        if presence < MIN_ROI_PRESENCE:
            return None, 0.0
        return face, presence

    def _hand_from_crop(self, image, body, vis, wr, el, owr):
        if min(vis[wr], vis[el]) < self.min_anchor_score:
            return None
        forearm = body[wr] - body[el]
        length = float(np.hypot(*forearm))
        if not np.isfinite(length) or length < 1:
            return None
        crop, (x0, y0, s) = _square_crop(image, body[wr] + HAND_CENTRE * forearm,
                                         HAND_SIDE * length)
        with quiet_native_stderr(not self.verbose):
            res = self._hands.process(crop)
        if not res.multi_hand_landmarks:
            return None
        hand = _landmarks(res.multi_hand_landmarks[0], CROP_SIZE, CROP_SIZE) * s + [x0, y0]
        d_own = np.hypot(*(hand[0] - body[wr]))
        d_other = np.hypot(*(hand[0] - body[owr]))
        if d_own > HAND_MAX_WRIST_DIST * max(length, MIN_CROP_PX) or d_own > d_other:
            return None
        return hand.astype(np.float32)

    def _face_from_crop(self, image, body, vis):
        anchors = [i for i in (_NOSE, _LEAR, _REAR) if vis[i] >= self.min_anchor_score]
        if _NOSE not in anchors:
            return None
        nose = body[_NOSE]
        size = max(np.hypot(*(body[_LEAR] - body[_REAR])),
                   max(np.hypot(*(body[i] - nose)) for i in (_LEAR, _REAR)),
                   0.5 * np.hypot(*(body[_LSH] - body[_RSH])))
        if not np.isfinite(size) or size < 1:
            return None
        crop, (x0, y0, s) = _square_crop(image, body[anchors].mean(axis=0), FACE_SIDE * size)
        with quiet_native_stderr(not self.verbose):
            res = self._face.process(crop)
        if not res.multi_face_landmarks:
            return None
        face = _landmarks(res.multi_face_landmarks[0], CROP_SIZE, CROP_SIZE) * s + [x0, y0]
        lo, hi = face.min(axis=0), face.max(axis=0)
        if not ((lo <= nose) & (nose <= hi)).all():
            return None
        return face.astype(np.float32)

    def close(self) -> None:
        """Release the MediaPipe graphs (idempotent)."""
        with quiet_native_stderr(not self.verbose):
            for name in ("_holistic", "_pose", "_hands", "_face"):
                model = getattr(self, name, None)
                if model is not None:
                    model.close()
                    setattr(self, name, None)
        self._hand_roi = self._face_roi = None

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()

    def __enter__(self) -> "HolisticDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
