"""Colours shared by the 2D overlay and the 3D panel, so one legend fits both.

Colours are RGB tuples (frames are RGB everywhere in wsgcn). Bones are coloured by the
side of their child keypoint (see :meth:`wsgcn_cli.skeletons.Skeleton.side_of_edge`):
the person's left in blue, right in red, the centre line in yellow. Face and hand
keypoints of COCO-WholeBody-133 are drawn thinner (:func:`detail_joints`). With several people
(``lift --people``) each person is drawn in one colour of their own instead,
:func:`person_color` of their track ID, in the 2D overlay and in both 3D views.
"""

from __future__ import annotations

from functools import lru_cache

from wsgcn_cli.skeletons import WHOLEBODY133_PARTS, Skeleton

LEFT_COLOR = (40, 130, 255)
RIGHT_COLOR = (255, 60, 60)
CENTRE_COLOR = (255, 215, 0)
SIDE_COLORS = {"left": LEFT_COLOR, "right": RIGHT_COLOR, "centre": CENTRE_COLOR}


@lru_cache(maxsize=None)
def edge_colors(skeleton: Skeleton) -> tuple[tuple[int, int, int], ...]:
    """One RGB colour per edge of ``skeleton.edges``, by side."""
    return tuple(SIDE_COLORS[skeleton.side_of_edge(e)] for e in skeleton.edges)


@lru_cache(maxsize=None)
def detail_joints(skeleton: Skeleton) -> tuple[bool, ...]:
    """Per keypoint: drawn as fine detail (thin lines, small dots) -- COCO-WholeBody-133's
    face (23-90) and hands (91-132), dense and small beside the body, and the COCO head
    points (nose, eyes, ears: 0-4) inside the face; none in other layouts."""
    detail = [False] * skeleton.num_joints
    if skeleton.name == "coco_wholebody133":
        detail[:5] = [True] * 5
        for part in ("face", "left_hand", "right_hand"):
            lo, hi = WHOLEBODY133_PARTS[part]
            detail[lo:hi] = [True] * (hi - lo)
    return tuple(detail)


@lru_cache(maxsize=None)
def detail_edges(skeleton: Skeleton) -> tuple[bool, ...]:
    """Per edge of ``skeleton.edges``: drawn thin (its child keypoint is a detail keypoint,
    :func:`detail_joints`: the face's contours, the fingers and the wrist-to-hand bone)."""
    detail = detail_joints(skeleton)
    return tuple(detail[b] for _, b in skeleton.edges)


def thin_width(thickness: int) -> int:
    """Line width (pixels) of detail bones beside body bones of ``thickness``."""
    return max(1, thickness // 2)


def detail_radius(thickness: int) -> int:
    """Dot radius (pixels) of detail keypoints beside body bones of ``thickness`` (0: a
    single pixel, so that 68 face points do not hide the face)."""
    return thin_width(thickness) - 1


@lru_cache(maxsize=None)
def joint_colors(skeleton: Skeleton) -> tuple[tuple[int, int, int], ...]:
    """One RGB colour per keypoint, by side."""
    left, right = set(skeleton.left), set(skeleton.right)
    return tuple(LEFT_COLOR if j in left else RIGHT_COLOR if j in right else CENTRE_COLOR
                 for j in range(skeleton.num_joints))


#: Colours (RGB) of people by track ID (cycled): distinct from each other and from the
#: single-person left / right / centre colours' meaning.
PERSON_COLORS = ((0, 200, 255), (255, 120, 0), (120, 255, 0), (255, 0, 200), (255, 255, 255),
                 (160, 80, 255), (0, 255, 160), (255, 210, 0))


def person_color(track_id: int) -> tuple[int, int, int]:
    """The colour (R, G, B) of the person with ``track_id`` in a multi-person overlay."""
    return PERSON_COLORS[int(track_id) % len(PERSON_COLORS)]
