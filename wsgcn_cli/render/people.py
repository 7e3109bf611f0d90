"""Everyone in a multi-person pose file, placed in one scene for the overlay's 3D panel.

A :class:`PeopleScene` is built once per clip from a
:class:`wsgcn_cli.io.posefile.PeoplePoseFile` (``lift --people all|N``) and then gives,
per frame, the people to draw (:meth:`PeopleScene.people_3d`) and the 3D panel
(:meth:`PeopleScene.panel`: :func:`wsgcn_cli.render.view3d.render_people_panel`).

Where people are put:

* **Camera view**: each person at ``keypoints_3d + root_camera_m`` (metres, camera frame:
  x right, y down, z forward), the root found by the world stage
  (:func:`wsgcn_cli.world.estimate_world`), so everyone is at their camera-space position
  and the camera frame is shared by construction.
* **Without world outputs** (a pipeline with ``[world] enabled = false``) the roots are
  estimated here with the world stage's own solve (:func:`wsgcn_cli.world.root_trajectory`)
  from an assumed field of view (:data:`wsgcn_cli.world.DEFAULT_FOV_DEG`, principal point
  at the image centre): positions are then only as good as that guess, and the panel's
  title says so.
* **Root unknown in a frame** (outside a person's track, or a gap the 2D stage did not
  fill: the world stage gives a root wherever there is a 3D pose): that person is not
  drawn in the 3D views in that frame -- no made-up position; their 2D is missing there too.
* **World view**: each person's own world frame has its own floor (the world stage fits one
  per person). The scene uses one shared frame, a *reference* person's
  (:func:`reference_person`), and puts everyone in it through the camera frame
  (``world = R_ref @ camera + t_ref``), so relative positions stay right and someone
  standing higher (on a box) is drawn above the floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wsgcn_cli.render.view3d import CameraView, PersonPose, WorldView, render_people_panel
from wsgcn_cli.skeletons import H36M17

#: :func:`reference_person` considers people with a 3D pose in at least this fraction of
#: the frames of the person with the most.
REFERENCE_MIN_SHARE = 0.25


def reference_person(roots: np.ndarray, camera_to_world: np.ndarray, frames_with_pose: np.ndarray) -> int:
    """Index of the person whose world frame a scene shares: among those with a 3D pose in
    at least :data:`REFERENCE_MIN_SHARE` of the frames of the most-seen person, the one
    whose floor is lowest -- the ground, which the others stand on or above (a person on a
    box has the box's top as their floor). Heights are compared in the most-seen person's
    world frame, each floor at the point under that person's median root. Ties: the first.

    Args:
        roots: (P, T, 3) metres, camera frame, NaN where unknown.
        camera_to_world: (P, 4, 4) each person's ``world = R @ camera + t``.
        frames_with_pose: (P,) counts.
    """
    counts = np.asarray(frames_with_pose)
    base = int(np.argmax(counts))
    rb, tb = camera_to_world[base][:3, :3], camera_to_world[base][:3, 3]
    best, best_h = base, np.inf
    for k in range(len(counts)):
        if counts[k] < REFERENCE_MIN_SHARE * counts[base] or not np.isfinite(roots[k]).any():
            continue
        r, t = camera_to_world[k][:3, :3], camera_to_world[k][:3, 3]
        up, root = r[1], np.nanmedian(roots[k], axis=0)
        foot = root - (up @ root + t[1]) * up  # on k's floor (world y = 0), under the root
        height = float(rb[1] @ foot + tb[1])
        if height < best_h - 1e-9:
            best, best_h = k, height
    return best


@dataclass(eq=False)
class PeopleScene:
    """The people of one clip placed for drawing (see the module docstring).

    Attributes:
        track_ids: (P,) int.
        keypoints_2d: (P, T, 17, 2) pixels (image frame); scores: (P, T, 17).
        camera: (P, T, 17, 3) metres, camera frame, at each person's position; NaN where
            the pose or root is unknown.
        world: (P, T, 17, 3) metres, the shared world frame (y up, floor at y = 0), or None
            without world outputs.
        contact: (P, T, 2) bool foot contact, or None.
        camera_view: the clip's :class:`~wsgcn_cli.render.view3d.CameraView`.
        world_view: the clip's :class:`~wsgcn_cli.render.view3d.WorldView` of the shared
            world frame, or None.
        reference: the track ID whose world frame is shared, or None.
        roots_measured: True when the roots come from the pose file's world outputs,
            False when estimated from an assumed field of view.
    """

    track_ids: np.ndarray
    keypoints_2d: np.ndarray
    scores: np.ndarray
    camera: np.ndarray
    world: np.ndarray | None
    contact: np.ndarray | None
    camera_view: CameraView
    world_view: WorldView | None
    reference: int | None
    roots_measured: bool

    @classmethod
    def from_pose_file(cls, p) -> "PeopleScene":
        """The scene of a :class:`wsgcn_cli.io.posefile.PeoplePoseFile` (one framing for
        the whole clip)."""
        kp3 = p.stacked("keypoints_3d").astype(np.float64)
        kp2 = p.stacked("keypoints_2d")
        if p.has_world:
            roots = p.stacked("root_camera_m").astype(np.float64)
        else:
            from wsgcn_cli.world import intrinsics, root_trajectory

            f, c = intrinsics(*p.people[0].image_size)
            roots = np.stack([root_trajectory(kp2[k], kp3[k], f, c, p.people[0].fps) for k in range(len(kp3))])
        camera = kp3 + roots[:, :, None]
        world = contact = world_view = reference = None
        if p.has_world:
            c2w = p.stacked("camera_to_world")
            ref = reference_person(roots, c2w, (~p.stacked("missing")).sum(1))
            rot, t = c2w[ref][:3, :3], c2w[ref][:3, 3]
            world = camera @ rot.T + t
            contact = p.stacked("foot_contact")
            world_view = WorldView.for_clip(world.reshape(-1, 17, 3), c2w[ref])
            reference = int(p.track_ids[ref])
            camera_view = CameraView.for_clip(camera, c2w[ref], world_view)
        else:
            camera_view = CameraView.for_clip(camera)
        return cls(np.asarray(p.track_ids), kp2, p.stacked("scores"), camera, world, contact, camera_view,
                   world_view, reference, p.has_world)

    @property
    def num_frames(self) -> int:
        return self.camera.shape[1]

    def people_3d(self, t: int) -> list[PersonPose]:
        """The people with a 3D pose and root in frame ``t``, in track order (the trail:
        their pelvis in the shared world frame in frames 0..t)."""
        out = []
        for k, tid in enumerate(self.track_ids):
            cam = self.camera[k, t]
            if not np.isfinite(cam).all(axis=1).any():
                continue
            out.append(PersonPose(int(tid), cam,
                                  None if self.world is None else self.world[k, t],
                                  None if self.world is None else self.world[k, :t + 1, 0],
                                  None if self.contact is None else self.contact[k, t]))
        return out

    def panel(self, t: int, size: tuple[int, int], out: np.ndarray | None = None) -> np.ndarray:
        """The 3D panel of frame ``t``: (height, width, 3) uint8 RGB of ``size`` (width,
        height), :func:`~wsgcn_cli.render.view3d.render_people_panel` of everyone."""
        title = None if self.roots_measured else "camera (roots: assumed field of view)"
        return render_people_panel(self.people_3d(t), self.camera_view, H36M17, size, world_view=self.world_view,
                                   title=title, out=out)
