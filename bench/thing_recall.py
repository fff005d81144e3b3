"""Where thing PQ is lost: recall of ground-truth thing segments by area, and unmatched predictions.

For one checkpoint on a data spec (default synth:val), with the checkpoint's own post-processing:
a GT thing (not crowd) counts as found when a predicted segment of its class has IoU > 0.5 with
it (pixels the prediction puts on GT void left out of the union, as panopticapi does). Areas are
in frame pixels (512x1024 for synth:val). Prints per thing class the GT count and the found count
per area bin, and the predicted thing segments per bin with how many of them match nothing.

    .venv/bin/python bench/thing_recall.py --checkpoint runs/x/checkpoints/best.pt [--data synth:val]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

BINS = (0, 64, 256, 1024, 4096, 16384, 1 << 40)  # area bin edges, frame pixels


def _bin(area: int) -> int:
    return int(np.searchsorted(BINS, area, side="right")) - 1


def main(argv: list[str] | None = None) -> int:
    from edgeps.data.datasets import open_dataset
    from edgeps.panoptic import compact_ids
    from edgeps.postprocess import panoptic_from_outputs
    from edgeps.preprocess import frame_geometry
    from edgeps.progress import progress
    from edgeps.training.inference import predictor_from_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", default="synth:val")
    args = parser.parse_args(argv)
    predictor = predictor_from_checkpoint(args.checkpoint)
    dataset = open_dataset(args.data)
    cats = dataset.categories
    divisor = predictor.settings.label_divisor
    things = {c: cats[c].name for c in cats.thing_ids}
    n_bins = len(BINS) - 1
    gt_count = {c: np.zeros(n_bins, int) for c in things}
    found = {c: np.zeros(n_bins, int) for c in things}
    pred_count, unmatched = np.zeros(n_bins, int), np.zeros(n_bins, int)
    for i in progress(range(len(dataset)), total=len(dataset), desc="images"):
        sample = dataset[i]
        pred = panoptic_from_outputs(
            predictor.heads(sample.image),
            thing_ids=cats.thing_ids,
            settings=predictor.settings,
            geometry=frame_geometry(sample.image.shape[:2], predictor.spec),
            compute_scores=False,
        ).panoptic
        g_ids, g_inv = compact_ids(np.asarray(sample.panoptic))
        p_ids, p_inv = compact_ids(pred)
        g_area, p_area = np.bincount(g_inv, minlength=len(g_ids)), np.bincount(p_inv, minlength=len(p_ids))
        inter = np.bincount(g_inv * len(p_ids) + p_inv, minlength=len(g_ids) * len(p_ids)).reshape(len(g_ids), -1)
        on_void = inter[g_ids == predictor.settings.void_label].sum(axis=0)
        iou = inter / np.maximum(g_area[:, None] + p_area[None, :] - inter - on_void[None, :], 1)
        same_class = (g_ids[:, None] // divisor) == (p_ids[None, :] // divisor)
        match = (iou > 0.5) & same_class
        for g, sid in enumerate(g_ids.tolist()):
            cls = sid // divisor
            if cls in things and sid % divisor:
                gt_count[cls][_bin(g_area[g])] += 1
                found[cls][_bin(g_area[g])] += int(match[g].any())
        for p, sid in enumerate(p_ids.tolist()):
            if sid // divisor in things:
                pred_count[_bin(p_area[p])] += 1
                unmatched[_bin(p_area[p])] += int(not match[:, p].any())
    edges = [f"{a}-{b}" for a, b in zip(BINS[:-2], BINS[1:-1])] + [f">{BINS[-2]}"]
    print(f"{args.checkpoint} on {args.data} ({len(dataset)} images); area bins (frame pixels): {', '.join(edges)}")
    for cls, name in things.items():
        cells = " ".join(f"{f}/{n}" for f, n in zip(found[cls], gt_count[cls]))
        print(f"  {name:12s} found/GT per bin: {cells}")
    print(f"  predicted thing segments per bin: {pred_count.tolist()}, matching nothing: {unmatched.tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
