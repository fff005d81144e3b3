"""The pixel grouping in the graph (export --postprocess grouping, for GPU targets) against the
host's grouping: identical maps in float64, >= 99.9 % of pixels in float32, on randomized heads
and on a trained tiny model's ONNX export through the parity gate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from edgeps.bundle import MANIFEST_NAME, read_manifest
from edgeps.errors import FormatError, InputShapeError
from edgeps.model.deploy import center_candidates, group_candidates
from edgeps.postprocess import instance_from_graph, panoptic_prediction_from_heads

THINGS = [2, 3]


def _random_heads(rng: np.random.Generator, h: int, w: int, plateaus: bool):
    heat = rng.random((h, w)).astype(np.float32) ** 6
    if plateaus:  # ties between peaks and at the K-th score
        heat = (np.round(heat * 4) / 4).astype(np.float32)
    semantic = rng.integers(0, 4, (h, w)).astype(np.int32)
    offsets = (rng.normal(0, 6, (2, h, w))).astype(np.float32)
    return semantic, heat, offsets


def _both(semantic, heat, offsets, threshold, nms_kernel, top_k, dtype):
    """(graph panoptic, host panoptic, graph instance map) for one frame."""
    index, score = center_candidates(torch.from_numpy(heat)[None, None], threshold, nms_kernel, top_k)
    off = torch.from_numpy(offsets)[None].to(dtype)
    instance = group_candidates(torch.from_numpy(semantic)[None], off, index, score, THINGS, top_k, chunk=7)
    kw = dict(thing_ids=THINGS, stuff_area=0, threshold=threshold, nms_kernel=nms_kernel, top_k=top_k)
    cand = (index[0].numpy(), score[0].numpy())
    graph = panoptic_prediction_from_heads(
        semantic, heat, offsets, center_candidates=cand, instance=instance[0].numpy(), **kw
    )
    host = panoptic_prediction_from_heads(semantic, heat, offsets, center_candidates=cand, **kw)
    return graph.panoptic, host.panoptic, instance[0].numpy()


@pytest.mark.parametrize(("threshold", "nms_kernel", "top_k"), [(0.1, 3, 12), (0.0, 1, 500), (0.6, 5, 40)])
def test_graph_grouping_in_float64_is_the_host_grouping(threshold, nms_kernel, top_k) -> None:
    rng = np.random.default_rng(top_k)
    for trial in range(4):
        semantic, heat, offsets = _random_heads(rng, 23 + trial, 41, plateaus=bool(trial % 2))
        graph, host, instance = _both(semantic, heat, offsets, threshold, nms_kernel, top_k, torch.float64)
        np.testing.assert_array_equal(graph, host)
        things = np.isin(semantic, THINGS)
        assert (instance[~things] == 0).all()  # only thing pixels are grouped
        assert (host % 1000 > 0).sum() > 0 or threshold == 0.6  # instances were found


def test_graph_grouping_in_float32_agrees_on_99_9_percent_at_a_real_size() -> None:
    rng = np.random.default_rng(7)
    semantic, heat, offsets = _random_heads(rng, 128, 256, plateaus=False)
    offsets *= 3  # votes land far from their pixels: many near-equal distances
    graph, host, _ = _both(semantic, heat, offsets, 0.1, 7, 200, torch.float32)
    assert len(np.unique(host[host % 1000 > 0])) >= 40  # 40+ instances, top_k binding or near it
    assert (graph == host).mean() >= 0.999


def test_instance_from_graph_maps_candidate_positions_to_row_major_centers() -> None:
    # candidates in score order: flat indices 9, 2, 5 (scores 0.9, 0.8, 0.7) and a non-peak (0)
    index, score = np.array([9, 2, 5, 0]), np.array([0.9, 0.8, 0.7, 0.0], np.float32)
    instance = np.array([[0, 1, 2], [3, 0, 1]])  # 1 + candidate position
    # row-major centers: 2 (position 1), 5 (position 2), 9 (position 0)
    np.testing.assert_array_equal(instance_from_graph(instance, index, score, (2, 5), 200), [[0, 3, 1], [2, 0, 3]])
    # all K are peaks and top_k binds: the ties at the K-th score are dropped (as on the host)
    score = np.array([0.9, 0.8, 0.7, 0.7], np.float32)
    got = instance_from_graph(np.array([[1, 2]]), index, score, (2, 5), 4)
    np.testing.assert_array_equal(got, [[2, 1]])
    with pytest.raises(InputShapeError, match="instance: values must be 0..4"):
        instance_from_graph(np.array([[5]]), index, score, (2, 5), 4)


def test_grouping_export_matches_the_host_path_and_old_bundles_load(tiny_checkpoint, tmp_path) -> None:
    from edgeps.bundle import HEADS
    from edgeps.data.datasets import open_dataset
    from edgeps.export.pipeline import export_bundles
    from edgeps.runtimes import load

    kw = {"parity_data": "synth:val:2", "parity_images": 2, "postprocess": "grouping", "calib": "synth:train:4"}
    (result,) = export_bundles(tiny_checkpoint, ["onnx"], ["fp32"], tmp_path, **kw)
    m = read_manifest(result.path)
    assert m.format_version == 2
    assert m.graph_centers["grouping"] is True and m.graph_centers["thing_ids"] == list(m.categories.thing_ids)
    assert [m.outputs[h]["index"] for h in ("center_index", "center_score", "instance")] == [4, 5, 6]
    assert result.parity["postprocess_agreement"] >= 0.999
    rt = load(result.path)
    frame = open_dataset("synth:val:1")[0].image
    heads = rt.infer(rt.preprocess(frame))
    assert heads["instance"].shape == (1, *m.input.size) and heads["instance"].dtype == np.int32
    in_graph = rt.postprocess(heads, frame.shape[:2]).panoptic
    on_host = rt.postprocess({h: heads[h] for h in HEADS}, frame.shape[:2]).panoptic
    assert (in_graph == on_host).mean() >= 0.999
    assert len(np.unique(in_graph[in_graph % 1000 > 0])) >= 1
    # a manifest of version 1 (written before the grouping output) still loads
    data = yaml.safe_load((result.path / MANIFEST_NAME).read_text())
    data.update(format_version=1)
    data["graph_centers"].pop("thing_ids")
    (result.path / MANIFEST_NAME).write_text(yaml.safe_dump(data))
    with pytest.raises(FormatError, match="graph_centers.thing_ids: expected the list of thing class ids"):
        read_manifest(result.path)
    data["graph_centers"].pop("grouping")
    data["outputs"].pop("instance")
    (result.path / MANIFEST_NAME).write_text(yaml.safe_dump(data))
    assert read_manifest(result.path).format_version == 1
