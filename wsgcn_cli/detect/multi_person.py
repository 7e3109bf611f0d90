"""Everyone in view: BlazePose's person detector and landmark model, run for each person.

:class:`BlazePoseMultiDetector` returns a list of :class:`Person` (BlazePose-33 landmarks
in pixels, visibility, presence, box) per frame. It does what MediaPipe's own pose
pipeline does for one person, for every person, plus re-detection with the people
already found blacked out:

1. **Person detector** (``pose_detection.tflite``, shipped in the mediapipe wheel): the
   frame letterboxed to 224 x 224, values in [-1, 1]; 2254 SSD anchors decoded into boxes
   and 4 keypoints (0: hip centre; 1: a point above the head giving the body's size and
   tilt); sigmoid scores >= ``min_detection_confidence``; weighted non-maximum
   suppression (IoU 0.3).
2. **Region of interest** per detection: a square centred on the hip centre, side 2.5 x
   the hip-to-scale-point distance, rotated so that the body is upright.
3. **Landmarks** (``pose_landmark_full.tflite``, BlazePose full): the ROI cropped to
   256 x 256, values in [0, 1]; 39 landmarks (33 body + 2 ROI helpers + 4 unused) refined
   with the model's heatmap (7 x 7 window); the pose-presence flag must reach
   ``min_presence``; landmarks projected back into the frame. A person new to the frame
   is run twice, the second time on the ROI made from its own helper landmarks (as
   MediaPipe's tracker would on the next frame), and must pass both times
   (``min_new_presence``): the detector's false people -- a pose hallucinated in a crop
   spanning two people, or in the sky -- mostly fade in the second pass (presence
   0.6 -> 0.06, 0.6 -> 0.3 on the Sports2D clip) while real people stay near 1.0.
4. **More people**: the detector is run again on the frame with everyone found so far
   blacked out (their landmark box + 10 %), until a round finds nobody new or
   ``max_people`` are found. BlazePose's detector is made for one person: on a whole
   frame it gives the most prominent person a high score and the others a low one or none
   (COCO 196141: batter 0.95, catcher 0.10; 040083: 0.88 and 0.06); with the first
   person hidden, the next one comes out.
5. **Video mode** (``static_image_mode=False``): each person's ROI for the next frame is
   made from their helper landmarks (MediaPipe's tracking), and the detector runs on every
   ``detect_every``-th frame (and whenever nobody is followed), on the frame with the
   followed people blacked out, to pick up newcomers. A candidate is dropped as someone already kept when the median distance
   between their landmarks is under ``same_person`` x that person's box diagonal, or when
   more than ``max_overlap`` of its box lies inside theirs (so a person mostly hidden
   behind another is lost while hidden). The list is ordered by presence; it is not an
   identity: tracking with stable IDs comes later (issue 15).

The numbers of steps 1-3 (input sizes and ranges, anchor layout, decoder scales, score
clipping, NMS threshold, ROI scale and target angle, heatmap window, presence threshold)
are read at run time from the wheel's own graph configs (``PoseDetectionCpu``,
``PoseDetectionToRoi``, ``PoseLandmarkByRoiCpu``, ``TensorsToPoseLandmarksAndSegmentation``:
the wheel has no ``.pbtxt``; they are compiled into ``mediapipe/python/_framework_bindings``
as serialised ``CalculatorGraphConfig`` protos), see :func:`read_wheel_graph_params`. If
they cannot be found (another mediapipe build), mediapipe 0.10.21's values,
:data:`DEFAULT_PARAMS`, are used with a warning. The models are run with the LiteRT
interpreter of the ``ai-edge-litert`` package (PyPI, CPU, XNNPACK; needs only
numpy >= 1.23.2, so it installs beside mediapipe's numpy < 2), or ``tflite_runtime`` if
that is what is installed. Nothing is downloaded.

Why this route
--------------
Two routes were built and measured (``benchmarks/multiperson_detect.py`` ->
``benchmarks/results/multiperson_detect.json``; first 150 frames of the Sports2D demo,
1768 x 994, where the man on the box is in view throughout and the woman walking in
front from frame 40; 4 COCO images with 1, 2, 4 and 5 people; one thread, shared
2-core machine):

(a) this module: the wheel's two ``.tflite`` files run directly (LiteRT), decoding in numpy.
(b) MediaPipe Tasks ``PoseLandmarker(num_poses=N)``: the Tasks API refuses the wheel's
    files as they are ("Input tensor has type float32: it requires specifying
    NormalizationOptions metadata to preprocess input images"); given that metadata at run
    time with the wheel's own ``mediapipe.tasks.python.metadata.metadata_writers``
    (detector mean/std 127.5, landmarks 0/255) and bundled as ``pose_detector.tflite`` +
    ``pose_landmarks_detector.tflite``, it loads and runs, in VIDEO and IMAGE mode.

Measured (one run, load average about 2 on the 2 cores; earlier runs under a load of
3-4 gave times up to 60 % higher, in the same order; ms per frame of the detector call
alone):

=============================  =========  =========  ==========  ======  ==========  ======
route                          video ms   ms, 1 /    both found  ghost   image mode  COCO
                               per frame  2 people   fr. 40-149  frames  both found  people
=============================  =========  =========  ==========  ======  ==========  ======
(a) default (detect_every=3)   73.9       62 / 79    0.93        0       0.16        1 2 2 3
(a) detect_every=1             85.3       74 / 91    0.94        0       0.16        1 2 2 3
(a) detect_every=5             46.7       38 / 52    0.82        0       0.16        1 2 2 3
(a) wheel thresholds 0.5/0.5   46.5       38 / 51    0.85        0       0.01        1 1 2 2
(b) num_poses=2                43.0       44 / 43    0.85        5       0.04        1 1 1 1
(b) num_poses=4                55.9       38 / 64    0.85        15      0.04        1 1 1 1
single-person Pose (lift)      25.0       --         --          --      --          --
=============================  =========  =========  ==========  ======  ==========  ======

"both found": fraction of frames 40-149 with at least two people (from frame 60 on, every
route finds both in every frame); "ghost frames": frames with a third person, or with a
second one before frame 36 when only the man is in view; "image mode": every frame on its
own, fraction of frames 60-149 with both; COCO: people found in 000000000785 (1 person),
000000040083 (2), 000000196141 (4: batter, catcher, 2 small in the background),
000000197388 (5 skiers), image mode. (a) finds the second seated man (040083, a partial
pose), the catcher and a third skier; (b) finds the most prominent person only.

(b) is faster (1.7x at ``num_poses=2``), needs no new package, and from frame 60 on is as good
as (a). But it can only return the people BlazePose's detector scores on one look at the
whole frame: one person in each COCO image (a lower ``min_pose_detection_confidence``
only adds a second copy of the same skier); in the clip it sees the woman at frame 43 but
loses her again for frames 46-58 (a: from frame 48 on, kept); and it reports false or
doubled people (ghost frames above), more with room for more people;
none of that can be changed from outside its C++ graph, and ``num_poses`` caps who is
looked for at all. (a) finds more people (re-detection on the masked frame), had no ghost
frame, and keeps every step (thresholds, re-detection rate, the ROIs a tracker will want)
in our hands. **Chosen: (a)**, at the cost of a new dependency (``ai-edge-litert``) and
speed; ``detect_every`` trades newcomers' delay for speed (3: found within 2 frames).

Known failures of (a): a person mostly hidden behind another is dropped as a double
(``max_overlap``); false people that survive both passes do occur -- on the 960 x 540
``samples/sports2d_clip.mp4``, frames 0 and 1 return a "person" in the sky (presence
0.97, 0.83), before the man and the woman are found in frame 3; a tracker should drop
short-lived tracks. The backlit man doing star jumps there is found with a sideways ROI
(rotated ~80 degrees, from the detector's keypoints), followed that way until frame 8,
then lost and not re-detected until frame 24 (the woman is followed throughout): the
ROI is taken as the detector and the landmarks give it, with no upright prior.

Neither route works on the clip in image mode (every frame on its own): against the
light, the detector misses the man in most frames; video mode (tracking) is what makes
the clip work, as with the single-person detector.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from wsgcn_cli.errors import WsgcnError

LAYOUT = "blazepose33"
NUM_BODY = 33

#: The pose graphs' parameters in mediapipe 0.10.21 (what read_wheel_graph_params finds
#: in that wheel; a test checks they agree). Used only if the wheel's graphs can't be read.
DEFAULT_PARAMS = {
    "detector_size": (224, 224),
    "detector_range": (-1.0, 1.0),
    "anchors": {"num_layers": 5, "strides": (8, 16, 32, 32, 32), "aspect_ratios": (1.0,),
                "anchor_offset_x": 0.5, "anchor_offset_y": 0.5,
                "interpolated_scale_aspect_ratio": 1.0, "fixed_anchor_size": True,
                "reduce_boxes_in_lowest_layer": False},
    "num_boxes": 2254, "num_coords": 12, "box_coord_offset": 0, "keypoint_coord_offset": 4,
    "num_keypoints": 4, "num_values_per_keypoint": 2,
    "scales": (224.0, 224.0, 224.0, 224.0), "reverse_output_order": True,
    "score_clipping_thresh": 100.0, "min_score_thresh": 0.5,
    "nms_iou": 0.3,
    "roi_start_keypoint": 0, "roi_end_keypoint": 1, "roi_target_angle_deg": 90.0,
    "roi_scale": (1.25, 1.25),
    "landmark_size": (256, 256),
    "landmark_range": (0.0, 1.0),
    "num_landmarks": 39,
    "heatmap_kernel": 7, "heatmap_min_confidence": 0.5,
    "presence_threshold": 0.5,
}


@dataclass
class Person:
    """One person in one frame.

    Attributes:
        xy: (33, 2) float32 BlazePose landmarks, pixels of the frame (origin top-left, x
            right, y down); they may lie outside the frame.
        score: (33,) float32 landmark visibility in [0, 1].
        presence: the landmark model's pose-presence flag in [0, 1].
        box: (4,) float32 ``x0, y0, x1, y1`` pixels, the landmarks' bounding box.
        roi: ``(cx, cy, size, angle)`` the square crop the landmarks came from (pixels,
            radians).
    """

    xy: np.ndarray
    score: np.ndarray
    presence: float
    box: np.ndarray
    roi: tuple = field(repr=False)


@runtime_checkable
class MultiPersonDetector(Protocol):
    """A 2D keypoint detector that returns everyone it finds in a frame.

    Attributes:
        layout: layout name of the keypoints it returns.
    """

    layout: str

    def detect_people(self, image: np.ndarray) -> list[Person]:
        """Everyone in ``image`` ((H, W, 3) uint8 RGB, upright), most confident first."""
        ...

    def close(self) -> None:
        ...


# --------------------------------------------------------------------------------------
# Parameters from the wheel

def _mediapipe_dir() -> Path:
    try:
        import mediapipe as mp
    except ImportError as e:
        raise WsgcnError(f"the multi-person detector needs the mediapipe package ({e})") \
            from None
    return Path(mp.__file__).parent


def _find_graph_configs(blob: bytes, names: list[str]) -> dict:
    """The serialised CalculatorGraphConfig protos of the subgraphs ``names`` in ``blob``.

    A registered subgraph is stored as its serialised config, which ends with its
    ``type`` field (field 20: bytes ``a2 01 <len> <name>``). Its start is found by parsing
    backwards until a start parses, re-serialises to the same bytes and has that type;
    the longest such span is the whole config.
    """
    from mediapipe.framework import calculator_pb2
    # Importing the options' modules registers their extensions with the parser.
    import mediapipe.calculators.tensor.image_to_tensor_calculator_pb2  # noqa: F401
    import mediapipe.calculators.tensor.tensors_to_detections_calculator_pb2  # noqa: F401
    import mediapipe.calculators.tflite.ssd_anchors_calculator_pb2  # noqa: F401
    import mediapipe.calculators.util.detections_to_rects_calculator_pb2  # noqa: F401
    import mediapipe.calculators.util.non_max_suppression_calculator_pb2  # noqa: F401
    import mediapipe.calculators.util.rect_transformation_calculator_pb2  # noqa: F401
    import mediapipe.calculators.util.refine_landmarks_from_heatmap_calculator_pb2  # noqa
    import mediapipe.calculators.util.thresholding_calculator_pb2  # noqa: F401
    import mediapipe.calculators.tensor.tensors_to_landmarks_calculator_pb2  # noqa: F401

    found = {}
    for name in names:
        tail = b"\xa2\x01" + bytes([len(name)]) + name.encode()
        for m in re.finditer(re.escape(tail), blob):
            end, best = m.end(), None
            for start in range(end - len(tail) - 2, max(0, end - 30000), -1):
                if blob[start] != 0x0A:  # field 1 (node), length-delimited
                    continue
                config = calculator_pb2.CalculatorGraphConfig()
                try:
                    config.ParseFromString(blob[start:end])
                except Exception:  # noqa: BLE001 - not a valid start
                    continue
                if config.type == name and config.node and \
                        config.SerializeToString() == blob[start:end]:
                    best = config
            if best is not None:
                found[name] = best
                break
    return found


def _node_options(config, calculator: str):
    for node in config.node:
        if node.calculator == calculator:
            for ext, value in node.options.ListFields():
                return value
    raise KeyError(calculator)


@functools.lru_cache(maxsize=1)
def read_wheel_graph_params() -> dict:
    """The pose pipeline's parameters, read from the installed mediapipe wheel.

    Returns:
        A dict with the keys of :data:`DEFAULT_PARAMS`.

    Raises:
        LookupError: the graphs or one of their nodes were not found.
    """
    libs = glob.glob(str(_mediapipe_dir() / "python" / "_framework_bindings*.so")) + \
        glob.glob(str(_mediapipe_dir() / "python" / "_framework_bindings*.pyd"))
    if not libs:
        raise LookupError("mediapipe's _framework_bindings library was not found")
    blob = Path(libs[0]).read_bytes()
    names = ["PoseDetectionCpu", "PoseDetectionToRoi", "PoseLandmarkByRoiCpu",
             "TensorsToPoseLandmarksAndSegmentation"]
    configs = _find_graph_configs(blob, names)
    missing = [n for n in names if n not in configs]
    if missing:
        raise LookupError(f"graph configs not found in {libs[0]}: {missing}")
    try:
        det = configs["PoseDetectionCpu"]
        itt = _node_options(det, "ImageToTensorCalculator")
        ssd = _node_options(det, "SsdAnchorsCalculator")
        dec = _node_options(det, "TensorsToDetectionsCalculator")
        nms = _node_options(det, "NonMaxSuppressionCalculator")
        roi = configs["PoseDetectionToRoi"]
        align = _node_options(roi, "AlignmentPointsRectsCalculator")
        rect = _node_options(roi, "RectTransformationCalculator")
        lm_itt = _node_options(configs["PoseLandmarkByRoiCpu"], "ImageToTensorCalculator")
        post = configs["TensorsToPoseLandmarksAndSegmentation"]
        heat = _node_options(post, "RefineLandmarksFromHeatmapCalculator")
        thresh = _node_options(post, "ThresholdingCalculator")
        to_lm = _node_options(post, "TensorsToLandmarksCalculator")
    except KeyError as e:
        raise LookupError(f"node {e} not found in the pose graphs") from None
    if ssd.input_size_width != itt.output_tensor_width or not rect.square_long:
        raise LookupError("unexpected pose graph layout")
    return {
        "detector_size": (itt.output_tensor_width, itt.output_tensor_height),
        "detector_range": (itt.output_tensor_float_range.min,
                           itt.output_tensor_float_range.max),
        "anchors": {"num_layers": ssd.num_layers, "strides": tuple(ssd.strides),
                    "aspect_ratios": tuple(ssd.aspect_ratios),
                    "anchor_offset_x": ssd.anchor_offset_x,
                    "anchor_offset_y": ssd.anchor_offset_y,
                    "interpolated_scale_aspect_ratio": ssd.interpolated_scale_aspect_ratio,
                    "fixed_anchor_size": ssd.fixed_anchor_size,
                    "reduce_boxes_in_lowest_layer": ssd.reduce_boxes_in_lowest_layer},
        "num_boxes": dec.num_boxes, "num_coords": dec.num_coords,
        "box_coord_offset": dec.box_coord_offset,
        "keypoint_coord_offset": dec.keypoint_coord_offset,
        "num_keypoints": dec.num_keypoints,
        "num_values_per_keypoint": dec.num_values_per_keypoint,
        "scales": (dec.x_scale, dec.y_scale, dec.w_scale, dec.h_scale),
        "reverse_output_order": dec.reverse_output_order,
        "score_clipping_thresh": dec.score_clipping_thresh,
        "min_score_thresh": dec.min_score_thresh,
        "nms_iou": nms.min_suppression_threshold,
        "roi_start_keypoint": align.rotation_vector_start_keypoint_index,
        "roi_end_keypoint": align.rotation_vector_end_keypoint_index,
        "roi_target_angle_deg": align.rotation_vector_target_angle_degrees,
        "roi_scale": (rect.scale_x, rect.scale_y),
        "landmark_size": (lm_itt.output_tensor_width, lm_itt.output_tensor_height),
        "landmark_range": (lm_itt.output_tensor_float_range.min,
                           lm_itt.output_tensor_float_range.max),
        "num_landmarks": to_lm.num_landmarks,
        "heatmap_kernel": heat.kernel_size,
        "heatmap_min_confidence": heat.min_confidence_to_refine,
        "presence_threshold": thresh.threshold,
    }


def _params() -> dict:
    try:
        return read_wheel_graph_params()
    except LookupError as e:
        warnings.warn(f"using mediapipe 0.10.21's pose graph parameters: {e}", stacklevel=3)
        return DEFAULT_PARAMS


# --------------------------------------------------------------------------------------
# Geometry

def ssd_anchor_centres(opts: dict, width: int, height: int) -> np.ndarray:
    """(N, 2) anchor centres (x, y), normalised, in MediaPipe's SsdAnchorsCalculator order.

    Only fixed-size anchors (``fixed_anchor_size``, as the pose detector uses) are
    supported: their width and height are 1, so only the centres matter.
    """
    if not opts["fixed_anchor_size"] or opts["reduce_boxes_in_lowest_layer"]:
        raise ValueError("only fixed-size SSD anchors are supported")
    strides = opts["strides"]
    per_cell_base = len(opts["aspect_ratios"]) + (
        1 if opts["interpolated_scale_aspect_ratio"] > 0 else 0)
    centres = []
    layer = 0
    while layer < opts["num_layers"]:
        last = layer
        while last < opts["num_layers"] and strides[last] == strides[layer]:
            last += 1
        per_cell = per_cell_base * (last - layer)
        fh, fw = math.ceil(height / strides[layer]), math.ceil(width / strides[layer])
        ys, xs = np.meshgrid((np.arange(fh) + opts["anchor_offset_y"]) / fh,
                             (np.arange(fw) + opts["anchor_offset_x"]) / fw, indexing="ij")
        cell = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cell, per_cell, axis=0))
        layer = last
    return np.concatenate(centres).astype(np.float32)


def _normalize_radians(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a`` (N, 4) and ``b`` (M, 4), ``x0, y0, x1, y1`` -> (N, M)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 iou_threshold: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression (``WEIGHTED``, IoU overlap).

    The best remaining detection absorbs every remaining one that overlaps it by more
    than ``iou_threshold``; its box and keypoints become their score-weighted mean, its
    score stays its own.
    """
    order = np.argsort(-scores, kind="stable")
    remaining = list(order)
    out = []
    while remaining:
        top = remaining[0]
        iou = _box_iou(boxes[[top]], boxes[remaining])[0]
        group = [r for r, o in zip(remaining, iou) if o > iou_threshold or r == top]
        remaining = [r for r, o in zip(remaining, iou) if not (o > iou_threshold or r == top)]
        w = scores[group][:, None]
        box = (boxes[group] * w).sum(0) / w.sum()
        kps = (keypoints[group] * w[:, :, None]).sum(0) / w.sum()
        out.append((box, kps, float(scores[top])))
    return out


def _crop(image: np.ndarray, roi: tuple, size: tuple, value_range: tuple,
          border_replicate: bool) -> np.ndarray:
    """The rotated square ``roi`` = (cx, cy, side, angle) of ``image``, resampled to
    ``size`` (w, h), as float32 in ``value_range``; (1, h, w, 3)."""
    import cv2
    cx, cy, side, angle = roi
    w, h = size
    c, s = math.cos(angle), math.sin(angle)
    # dst pixel (u, v) centre -> normalised (u + .5) / w -> frame point
    # c + side * R(angle) @ (n - .5); cv2 samples pixel centres at integer indices.
    a = np.array([[c * side / w, -s * side / h], [s * side / w, c * side / h]])
    b = np.array([cx, cy]) - side * np.array([[c, -s], [s, c]]) @ np.array([0.5, 0.5]) \
        + a @ np.array([0.5, 0.5]) - 0.5
    matrix = np.hstack([a, b[:, None]])
    out = cv2.warpAffine(image, matrix, (w, h),
                         flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE if border_replicate
                         else cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    lo, hi = value_range
    return (out.astype(np.float32) * ((hi - lo) / 255.0) + lo)[None]


# --------------------------------------------------------------------------------------
# Runtime

def _make_interpreter(model_path: Path, num_threads: int):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise WsgcnError(
                "the multi-person detector needs a TFLite runtime: pip install "
                "ai-edge-litert") from None
    interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads)
    interpreter.allocate_tensors()
    return interpreter


class _Model:
    """A TFLite model with one float input and its outputs by name (``Identity*``)."""

    def __init__(self, path: Path, num_threads: int):
        self._it = _make_interpreter(path, num_threads)
        self._input = self._it.get_input_details()[0]["index"]
        self._outputs = {d["name"]: d["index"] for d in self._it.get_output_details()}

    def __call__(self, tensor: np.ndarray, names: list[str]) -> list[np.ndarray]:
        self._it.set_tensor(self._input, tensor)
        self._it.invoke()
        return [self._it.get_tensor(self._outputs[n]) for n in names]


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


class BlazePoseMultiDetector:
    """BlazePose landmarks of everyone in the frame (see the module docstring).

    Args:
        max_people: at most this many people per frame (the most confident).
        static_image_mode: True for unrelated images (the detector alone finds people in
            each image); False for video (people are also followed from the previous
            frame's landmarks; frames must come in order and keep one size).
        min_detection_confidence: person-detector score threshold in [0, 1] (the
            wheel's graph uses 0.5; 0.3 finds more people, the presence checks below
            reject what is not a person).
        min_presence: landmark model's pose-presence threshold in [0, 1] for people
            followed from the previous frame (default: the wheel's, 0.5).
        detect_every: in video mode, run the person detector on every n-th frame (1:
            every frame); people already followed are tracked in between.
        max_overlap: a candidate with more than this fraction of its landmark box inside
            the box of someone kept already is that person.
        same_person: a candidate whose median landmark distance to someone kept is under
            this fraction of their box diagonal is that person.
        mask_margin: the box blacked out before re-detection is the person's landmark box
            enlarged by this fraction of its size on each side.
        min_new_presence: presence a person found by the detector (not followed) needs,
            in both passes (default: ``min_presence``).
        num_threads: TFLite interpreter threads.

    Attributes:
        layout: ``"blazepose33"``.

    :meth:`detect` makes it a single-person :class:`~wsgcn_cli.detect.base.Detector`
    too (the most confident person).
    """

    layout = LAYOUT

    def __init__(self, max_people: int = 4, static_image_mode: bool = False,
                 min_detection_confidence: float = 0.3,
                 min_presence: float | None = None, detect_every: int = 3,
                 max_overlap: float = 0.8, same_person: float = 0.1,
                 mask_margin: float = 0.1, min_new_presence: float | None = None,
                 num_threads: int = 1):
        if max_people < 1:
            raise WsgcnError(f"max_people must be >= 1, not {max_people}")
        if detect_every < 1:
            raise WsgcnError(f"detect_every must be >= 1, not {detect_every}")
        p = _params()
        self.params = p
        for name, value in (("min_detection_confidence", min_detection_confidence),
                            ("min_presence", min_presence),
                            ("min_new_presence", min_new_presence)):
            if value is not None and not 0.0 <= value <= 1.0:
                raise WsgcnError(f"{name} must be in [0, 1], not {value}")
        self.max_people = int(max_people)
        self.static_image_mode = bool(static_image_mode)
        self.min_detection_confidence = float(min_detection_confidence)
        self.min_presence = p["presence_threshold"] if min_presence is None \
            else float(min_presence)
        self.detect_every = int(detect_every)
        self.max_overlap = float(max_overlap)
        self.same_person = float(same_person)
        self.mask_margin = float(mask_margin)
        self.min_new_presence = self.min_presence if min_new_presence is None \
            else float(min_new_presence)
        root = _mediapipe_dir() / "modules"
        det_path = root / "pose_detection" / "pose_detection.tflite"
        lm_path = root / "pose_landmark" / "pose_landmark_full.tflite"
        for path in (det_path, lm_path):
            if not path.is_file():
                raise WsgcnError(f"{path} is missing from the mediapipe installation")
        with _quiet():
            self._detector = _Model(det_path, num_threads)
            self._landmarker = _Model(lm_path, num_threads)
        dw, dh = p["detector_size"]
        self._anchors = ssd_anchor_centres(p["anchors"], dw, dh)
        if len(self._anchors) != p["num_boxes"]:
            raise WsgcnError(f"{len(self._anchors)} anchors for {p['num_boxes']} boxes")
        self._tracked: list[tuple] = []  # ROIs for the next frame (video mode)
        self._frame_index = 0
        self._closed = False

    # -- the three steps -------------------------------------------------------------

    def detect_rois(self, image: np.ndarray) -> list[tuple[tuple, float]]:
        """Person detector: ``[(roi, score), ...]``, best first; ``roi`` = (cx, cy,
        side, angle) in pixels / radians."""
        p = self.params
        h, w = image.shape[:2]
        dw, dh = p["detector_size"]
        side = float(max(w, h))  # letterbox: the frame centred in a square
        frame_roi = (w / 2.0, h / 2.0, side, 0.0)
        tensor = _crop(image, frame_roi, (dw, dh), p["detector_range"], False)
        raw_boxes, raw_scores = self._detector(tensor, ["Identity", "Identity_1"])
        raw_boxes, raw_scores = raw_boxes[0], raw_scores[0, :, 0]
        clip = p["score_clipping_thresh"]
        scores = _sigmoid(np.clip(raw_scores, -clip, clip))
        keep = np.flatnonzero(scores >= self.min_detection_confidence)
        if keep.size == 0:
            return []
        sx, sy, sw, sh = p["scales"]
        anchors = self._anchors[keep]
        r = raw_boxes[keep]
        o = p["box_coord_offset"]
        if p["reverse_output_order"]:
            xc, yc, bw, bh = r[:, o], r[:, o + 1], r[:, o + 2], r[:, o + 3]
        else:
            yc, xc, bh, bw = r[:, o], r[:, o + 1], r[:, o + 2], r[:, o + 3]
        xc = xc / sx + anchors[:, 0]
        yc = yc / sy + anchors[:, 1]
        bw, bh = bw / sw, bh / sh
        boxes = np.stack([xc - bw / 2, yc - bh / 2, xc + bw / 2, yc + bh / 2], axis=1)
        k0, nk, nv = (p["keypoint_coord_offset"], p["num_keypoints"],
                      p["num_values_per_keypoint"])
        kps = r[:, k0:k0 + nk * nv].reshape(-1, nk, nv)[:, :, :2].copy()
        if not p["reverse_output_order"]:
            kps = kps[:, :, ::-1]
        kps[:, :, 0] = kps[:, :, 0] / sx + anchors[:, None, 0]
        kps[:, :, 1] = kps[:, :, 1] / sy + anchors[:, None, 1]
        out = []
        for _box, kp, score in weighted_nms(boxes, kps, scores[keep], p["nms_iou"]):
            # square input -> frame pixels (letterbox removal)
            kp_px = (kp - 0.5) * side + np.array([w / 2.0, h / 2.0])
            out.append((self._roi_from_points(kp_px[p["roi_start_keypoint"]],
                                              kp_px[p["roi_end_keypoint"]]), score))
        return out

    def _roi_from_points(self, centre: np.ndarray, scale_point: np.ndarray) -> tuple:
        p = self.params
        dx, dy = scale_point - centre
        side = 2.0 * math.hypot(dx, dy) * max(p["roi_scale"])
        angle = _normalize_radians(math.radians(p["roi_target_angle_deg"])
                                   - math.atan2(-dy, dx))
        return (float(centre[0]), float(centre[1]), float(side), float(angle))

    def landmarks(self, image: np.ndarray, roi: tuple):
        """Landmark model on one ROI: ``(xy (39, 2) px, visibility (39,), presence)``."""
        p = self.params
        lw, lh = p["landmark_size"]
        tensor = _crop(image, roi, (lw, lh), p["landmark_range"], True)
        raw, flag, heatmap = self._landmarker(tensor, ["Identity", "Identity_1", "Identity_3"])
        n = p["num_landmarks"]
        raw = raw[0].reshape(n, -1)
        norm = raw[:, :2] / np.array([lw, lh], np.float32)
        norm = _refine_from_heatmap(norm, heatmap[0], p["heatmap_kernel"],
                                    p["heatmap_min_confidence"])
        cx, cy, side, angle = roi
        c, s = math.cos(angle), math.sin(angle)
        x, y = norm[:, 0] - 0.5, norm[:, 1] - 0.5
        xy = np.stack([cx + side * (c * x - s * y), cy + side * (s * x + c * y)], axis=1)
        return xy.astype(np.float32), _sigmoid(raw[:, 3]).astype(np.float32), \
            float(np.ravel(flag)[0])

    # -- frames ----------------------------------------------------------------------

    def detect_people(self, image: np.ndarray) -> list[Person]:
        """Everyone found in ``image`` ((H, W, 3) uint8 RGB, upright), most confident
        first, at most ``max_people``."""
        if self._closed:
            raise RuntimeError("BlazePoseMultiDetector is closed")
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} "
                             f"{image.dtype}")
        image = np.ascontiguousarray(image)
        tracked = [] if self.static_image_mode else self._tracked
        kept: list = []  # (Person, ROI for the next frame), most confident first
        for roi in tracked:
            candidate = self._person(image, roi)
            if candidate is not None:
                self._keep(kept, candidate)
        if self.static_image_mode or not kept or \
                self._frame_index % self.detect_every == 0:
            self._find_new(image, kept)
        self._frame_index += 1
        kept = kept[: self.max_people]
        if not self.static_image_mode:
            self._tracked = [roi for _, roi in kept]
        return [q for q, _ in kept]

    def _find_new(self, image: np.ndarray, kept: list) -> None:
        """Person detector on the frame with everyone in ``kept`` blacked out, again
        after each round that found someone, until nobody new or ``max_people``."""
        masked = None
        for _round in range(self.max_people):
            if len(kept) >= self.max_people:
                return
            if kept:
                masked = image.copy() if masked is None else masked
                for q, _ in kept:
                    _black_out(masked, q.box, self.mask_margin)
            found = False
            for roi, _score in self.detect_rois(image if masked is None else masked):
                if any(q.box[0] <= roi[0] <= q.box[2] and q.box[1] <= roi[1] <= q.box[3]
                       for q, _ in kept):
                    continue  # centred on someone found already (blacked out or not)
                candidate = self._person(image, roi, self.min_new_presence)
                if candidate is None:
                    continue
                # a second pass, on the ROI made from its own landmarks (the tracker's):
                # a real person stays; a false one mostly fades (presence falls)
                candidate = self._person(image, candidate[1], self.min_new_presence)
                if candidate is not None and self._keep(kept, candidate):
                    found = True
            if not found:
                return

    def _keep(self, kept: list, candidate: tuple) -> bool:
        """Add ``candidate`` to ``kept`` (by presence) unless it is someone kept already:
        median landmark distance under ``same_person`` x that person's box diagonal, or
        more than ``max_overlap`` of its box inside theirs."""
        q = candidate[0]
        for k, _ in kept:
            if _same_person(q, k, self.same_person) or \
                    _inside_fraction(q.box, k.box) > self.max_overlap:
                return False
        kept.append(candidate)
        kept.sort(key=lambda c: -c[0].presence)
        return True

    def _person(self, image: np.ndarray, roi: tuple, min_presence: float | None = None):
        """Landmarks in ``roi``: ``(Person, ROI for the next frame)``, or None below
        ``min_presence`` (default: ``self.min_presence``)."""
        xy, vis, presence = self.landmarks(image, roi)
        if presence < (self.min_presence if min_presence is None else min_presence):
            return None
        body = xy[:NUM_BODY]
        box = np.concatenate([body.min(0), body.max(0)]).astype(np.float32)
        person = Person(xy=body.copy(), score=np.clip(vis[:NUM_BODY], 0, 1),
                        presence=presence, box=box, roi=roi)
        return person, self._roi_from_points(xy[NUM_BODY], xy[NUM_BODY + 1])

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The most confident person, as a single-person Detector: ``(xy (33, 2),
        score (33,))``, NaN / 0 if nobody was found."""
        people = self.detect_people(image)
        if not people:
            return np.full((NUM_BODY, 2), np.nan, np.float32), np.zeros(NUM_BODY, np.float32)
        return people[0].xy, people[0].score

    def reset(self) -> None:
        """Forget the people followed from earlier frames (a new video)."""
        self._tracked, self._frame_index = [], 0

    def close(self) -> None:
        """Release the models (idempotent)."""
        self._closed = True
        self._detector = self._landmarker = None

    def __enter__(self) -> "BlazePoseMultiDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _inside_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of box ``a``'s area inside box ``b`` (``x0, y0, x1, y1``)."""
    inter = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None).prod()
    area = np.clip(a[2:] - a[:2], 0, None).prod()
    return float(inter / area) if area > 0 else 1.0


def _black_out(image: np.ndarray, box: np.ndarray, margin: float) -> None:
    """Set ``box`` (enlarged by ``margin`` x its size on each side) to 0, in place."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    c0, c1 = int(max(0, math.floor(x0 - mx))), int(min(w, math.ceil(x1 + mx)))
    r0, r1 = int(max(0, math.floor(y0 - my))), int(min(h, math.ceil(y1 + my)))
    if c1 > c0 and r1 > r0:
        image[r0:r1, c0:c1] = 0


def _same_person(a: Person, b: Person, threshold: float) -> bool:
    diag = float(np.hypot(*(b.box[2:] - b.box[:2])))
    return float(np.median(np.linalg.norm(a.xy - b.xy, axis=1))) < threshold * max(diag, 1.0)


def _refine_from_heatmap(norm: np.ndarray, heatmap: np.ndarray, kernel: int,
                         min_confidence: float) -> np.ndarray:
    """Landmarks (N, 2) normalised to the crop, moved to the confidence-weighted mean of
    the ``kernel`` x ``kernel`` window of their heatmap around them (heatmap: (H, W, N)
    logits; confidence: their sigmoid; the window is cut at the heatmap's edges) when the
    window's peak confidence reaches ``min_confidence``; landmarks off the heatmap are
    kept. Window cells are weighted at their integer (column, row), as MediaPipe does."""
    hh, hw, n = heatmap.shape
    half = (kernel - 1) // 2
    col = (norm[:, 0] * hw).astype(np.int64)  # truncated towards 0, as in MediaPipe
    row = (norm[:, 1] * hh).astype(np.int64)
    inside = (col >= 0) & (col < hw) & (row >= 0) & (row < hh)
    offsets = np.arange(-half, half + 1)
    rows = row[:, None] + offsets  # (N, k)
    cols = col[:, None] + offsets
    valid = ((rows >= 0) & (rows < hh))[:, :, None] & ((cols >= 0) & (cols < hw))[:, None, :]
    logits = heatmap[np.clip(rows, 0, hh - 1)[:, :, None], np.clip(cols, 0, hw - 1)[:, None, :],
                     np.arange(n)[:, None, None]]
    conf = np.where(valid, _sigmoid(logits), 0.0)  # (N, k, k)
    total = conf.sum(axis=(1, 2))
    refine = inside & (total > 0) & (conf.max(axis=(1, 2)) >= min_confidence)
    safe = np.where(total > 0, total, 1.0)
    x = (conf * cols[:, None, :]).sum(axis=(1, 2)) / safe / hw
    y = (conf * rows[:, :, None]).sum(axis=(1, 2)) / safe / hh
    out = norm.copy()
    out[refine] = np.stack([x, y], axis=1)[refine]
    return out


@contextlib.contextmanager
def _quiet():
    """TFLite's ``INFO: Created TensorFlow Lite XNNPACK delegate`` line is dropped from fd 2
    (the single-person detector's filter), everything else passed on."""
    try:
        from wsgcn_cli.detect.mediapipe_pose import quiet_native_stderr
    except ImportError:  # pragma: no cover
        yield
        return
    with quiet_native_stderr(True):
        yield
