"""The 2D stage: a detector's keypoints -> the lifter's H36M-17 2D, in pixels.

Three steps, one module each, run in this order by
:class:`wsgcn_cli.pipeline.stages.Pose2D` (the ``[representation]`` table of a pipeline):

* :mod:`.mapping`: any supported layout (BlazePose-33, COCO-17, COCO-WholeBody-133,
  SH-16) -> H36M-17, with the documented corrections towards Human3.6M's joints;
* :mod:`.gaps`: short runs of missing keypoints interpolated over time;
* :mod:`.network`: optionally, the 2D pose representation network
  (:class:`~wsgcn_cli.pose2d.network.RepresentationModel`; its layers are
  :mod:`wsgcn_cli.models.pose2d_net`), which cleans and completes the pose.
"""
