"""One module per ``edgeps`` subcommand.

Each module defines ``add_arguments(parser)`` and ``run(args) -> int``; its name and help line
are the row of :data:`COMMANDS`.
The CLI imports a command's module only when that command runs, so ``edgeps --help`` never
pulls in torch or a backend.
"""

# (subcommand name, module under edgeps.apps.commands, one-line help)
COMMANDS: list[tuple[str, str, str]] = [
    ("eval-coco", "eval_coco", "PQ/SQ/RQ of COCO-panoptic predictions against ground truth"),
    ("fuse", "fuse", "fuse semantic and instance predictions into COCO panoptic (panopticapi's combine script)"),
    ("bench-postprocess", "bench_postprocess", "time the post-processing on synthetic heads"),
    ("train", "train", "train a model from a YAML config (configs/*.yaml)"),
    ("eval", "eval", "PQ/SQ/RQ and mIoU of a checkpoint on synth:val or a COCO-panoptic folder"),
    (
        "tune-postprocess",
        "tune_postprocess",
        "choose post-processing settings (center threshold, NMS kernel, top-k, stuff and thing area) on held-out data",
    ),
    ("eval-video", "eval_video", "STQ/AQ/SQ, VPQ, id switches and tracked %% of a model plus the tracker on videos"),
    ("data", "data", "write synthetic street data (images, video, COCO-panoptic GT); dataset statistics"),
    (
        "export",
        "export",
        "export a checkpoint to bundles (one per format and precision) with calibration and a parity gate",
    ),
    ("run", "run", "run a bundle on a camera, stream, video, image folder or rosbag (real-time or record mode)"),
    ("bench", "bench", "latency/FPS of bundles (preprocess, infer, postprocess) on the same frames"),
    (
        "demo",
        "demo",
        "train, export every backend, stream the synthetic video, PQ per backend and benchmark (no download)",
    ),
    ("model-info", "model_info", "parameters and GFLOPs of a model config"),
    ("ros2", "ros2", "ROS 2 node: camera images in, panoptic/semantic/overlay/segments topics out"),
]
