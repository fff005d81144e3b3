"""The deploy model with the post-processing in the graph against the same model plus the host's
post-processing, in torch, on CUDA when there is one (issue 28, item 5).

Per input size (default 512x1024 and 1024x2048), on one synthetic street frame resized to it:

- ``model``: DeployModel (heads only) on the device, outputs copied to the host;
- ``model + host post-processing``: that, then :func:`edgeps.postprocess.panoptic_from_outputs`
  on the CPU (numpy / OpenCV);
- ``graph grouping``: DeployModel with the center extraction and the pixel grouping in the graph
  (``export --postprocess grouping``) on the device, then what the host has left (the class vote).

Each time is the median of ``--repeats`` calls after ``--warmup``, with the device synchronized;
the peak device memory (CUDA) is printed per row. Needs only torch, numpy, OpenCV and PyYAML:
run it from the repository root with ``PYTHONPATH=.`` on a machine without edgeps installed.

    python bench/gpu_postprocess.py [--checkpoint best.pt] [--sizes 512x1024,1024x2048] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> int:
    import cv2
    import numpy as np
    import torch

    from edgeps.bundle import CENTER_HEADS, GROUPING_HEADS, HEADS
    from edgeps.data.datasets import open_dataset
    from edgeps.data.synthetic import SYNTH_CATEGORIES
    from edgeps.model.deploy import DeployModel
    from edgeps.postprocess import PostprocessSettings, panoptic_from_outputs
    from edgeps.preprocess import InputSpec, preprocess

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="training checkpoint (default: the default model, random weights)")
    parser.add_argument("--sizes", default="512x1024,1024x2048")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    dev = torch.device(args.device)
    if args.checkpoint:
        from edgeps.training.inference import model_from_checkpoint

        model, categories, cfg = model_from_checkpoint(args.checkpoint)
        settings = cfg.postprocess
    else:
        from edgeps.model import ModelConfig, PanopticModel

        model = PanopticModel(ModelConfig(num_classes=len(SYNTH_CATEGORIES), pretrained=False))
        categories, settings = SYNTH_CATEGORIES, PostprocessSettings(threshold=0.1)
    thing_ids = list(categories.thing_ids)
    graph = {"threshold": settings.threshold, "nms_kernel": settings.nms_kernel, "top_k": settings.top_k or 200}
    plain = DeployModel(model).eval().to(dev)
    grouped = DeployModel(model, centers={**graph, "grouping": True, "thing_ids": thing_ids}).eval().to(dev)
    frame = open_dataset("synth:val:1")[0].image
    rows = []
    print(
        f"device {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'}), torch {torch.__version__}"
    )
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.lower().split("x"))
        spec = InputSpec(size=(h, w))
        x = torch.from_numpy(preprocess(cv2.resize(frame, (w, h)), spec)).to(dev)

        def sync() -> None:
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)

        def heads(net: torch.nn.Module, names: list[str], x: torch.Tensor = x) -> dict[str, np.ndarray]:
            with torch.inference_mode():
                out = net(x)
            return {n: t.cpu().numpy() for n, t in zip(names, out)}

        def model_only(heads=heads) -> dict:
            return heads(plain, list(HEADS))

        def with_host(heads=heads) -> np.ndarray:
            out = heads(plain, list(HEADS))
            return panoptic_from_outputs(out, thing_ids=thing_ids, settings=settings, compute_scores=False).panoptic

        def in_graph(heads=heads) -> np.ndarray:
            out = heads(grouped, [*HEADS, *CENTER_HEADS, *GROUPING_HEADS])
            return panoptic_from_outputs(out, thing_ids=thing_ids, settings=settings, compute_scores=False).panoptic

        agreement = float((in_graph() == with_host()).mean())
        row = {"size": size, "device": str(dev), "agreement": agreement}
        for name, fn in (("model_ms", model_only), ("model_host_ms", with_host), ("graph_grouping_ms", in_graph)):
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
            for _ in range(args.warmup):
                fn()
            times = []
            for _ in range(args.repeats):
                sync()
                t0 = time.perf_counter()
                fn()
                sync()
                times.append((time.perf_counter() - t0) * 1e3)
            row[name] = statistics.median(times)
            if dev.type == "cuda":
                row[name.replace("_ms", "_peak_mb")] = torch.cuda.max_memory_allocated(dev) / 2**20
        rows.append(row)
        mem = (
            f", peak device MB {row['model_host_peak_mb']:.0f} / {row['graph_grouping_peak_mb']:.0f}"
            if dev.type == "cuda"
            else ""
        )
        print(
            f"{size:>10}: model {row['model_ms']:.1f} ms, model + host post-processing {row['model_host_ms']:.1f} ms, "
            f"grouping in the graph {row['graph_grouping_ms']:.1f} ms (maps agree on {100 * agreement:.2f} %){mem}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
