"""Soak benchmark: a long stream through each bundle, watching memory, queues and counters.

    python bench/soak.py --bundle out/demo/bundles/onnx-fp32 out/demo/bundles/openvino-int8 --minutes 10

The synthetic video is looped as a live source that dies every ``--fail-every`` seconds, so
the capture thread's reconnect path runs again and again. RSS is sampled every
``--sample-every`` seconds; the report gives growth after warm-up (target < 5 %), the largest
queue depth seen (bounded queues: never above their size), and checks that the frame counters
add up (processed + dropped + in flight = captured). Not a test: it takes minutes per bundle.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

from edgeps.apps.bench.measure import vm_kb
from edgeps.errors import SourceError
from edgeps.stream.sources import FrameSource, open_source


class LoopedVideo(FrameSource):
    """A video file played in a loop as a live source that fails every ``fail_every`` s."""

    kind = "looped video"
    live = True

    def __init__(self, path: str, fail_every: float):
        super().__init__(path)
        self.fail_every = fail_every
        self._src = open_source(path)
        self._opened = time.monotonic()
        self._period = 1.0 / (self._src.fps or 30.0)  # paced like a camera, not as fast as decoding
        self._next = time.monotonic()

    def read(self) -> np.ndarray | None:
        if self._src is None:
            raise SourceError(f"{self.spec}: closed")
        if self.fail_every > 0 and time.monotonic() - self._opened > self.fail_every:
            raise SourceError(f"{self.spec}: scripted drop-out after {self.fail_every:.0f} s")
        self._next += self._period
        time.sleep(max(0.0, self._next - time.monotonic()))
        self._next = max(self._next, time.monotonic() - self._period)
        frame = self._src.read()
        if frame is None:  # end of file: start over
            self._src.close()
            self._src = open_source(self.spec)
            frame = self._src.read()
        return frame

    def reopen(self) -> None:
        self.close()
        self._src = open_source(self.spec)
        self._opened = time.monotonic()

    def close(self) -> None:
        if self._src is not None:
            self._src.close()
            self._src = None


def soak(bundle: str, video: str, minutes: float, fail_every: float, sample_every: float, threads: int) -> dict:
    from edgeps.runtimes import load
    from edgeps.stream.pipeline import StreamPipeline
    from edgeps.stream.tracker import Tracker

    rt = load(bundle, threads=threads)
    pipe = StreamPipeline(
        rt,
        LoopedVideo(video, fail_every),
        realtime=True,
        tracker=Tracker(rt.thing_ids),
        reconnect_timeout=10.0,
        backoff=(0.05, 0.5),
    )
    samples: list[dict] = []
    stop = threading.Event()

    def sampler() -> None:
        t0 = time.monotonic()
        while not stop.wait(sample_every):
            s = pipe.summary()
            samples.append(
                {
                    "t": round(time.monotonic() - t0, 1),
                    "rss_mb": round(vm_kb("VmRSS") or float("nan"), 1),
                    "queues": pipe.queue_depths(),
                    "frames": s["frames"],
                    "captured": s["captured"],
                    "dropped": s["dropped"],
                }
            )

    threading.Thread(target=sampler, daemon=True).start()
    deadline = time.monotonic() + 60 * minutes
    for _ in pipe:
        if time.monotonic() >= deadline:
            break
    pipe.stop()
    stop.set()
    s = pipe.summary()
    warm = [x["rss_mb"] for x in samples if x["t"] >= min(30.0, 60 * minutes / 4)]
    # a minute's median at each end: RSS of a live process wobbles by a few MB (frame buffers
    # in flight), which a single first/last sample would read as growth or shrinkage
    k = max(1, min(len(warm) // 4, int(round(60 / sample_every))))
    first, last = (float(np.median(warm[:k])), float(np.median(warm[-k:]))) if warm else (float("nan"),) * 2
    growth = (last - first) / first if len(warm) >= 2 else float("nan")
    in_flight = s["captured"] - s["frames"] - s["dropped"]
    expected_failures = int(60 * minutes // fail_every) if fail_every > 0 else 0
    return {
        "bundle": bundle,
        "backend": rt.info["backend"],
        "minutes": minutes,
        "frames": s["frames"],
        "captured": s["captured"],
        "dropped": s["dropped"],
        "in_flight_at_end": in_flight,
        "counters_consistent": 0 <= in_flight <= 4,
        "reconnects": s["reconnects"],
        "source_failures": s["source_failures"],
        "expected_failures": expected_failures,
        "fps": s["fps"],
        "rss_first_mb": round(first, 1),
        "rss_last_mb": round(last, 1),
        "rss_max_mb": max(warm, default=None),
        "rss_growth": growth,
        "max_queue_depth": max((max(x["queues"]) for x in samples), default=0),
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", nargs="+", required=True)
    p.add_argument("--video", help="video to loop (default: a synthetic 256x512 street video, 60 frames)")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument(
        "--fail-every", type=float, default=30.0, help="seconds between scripted source drop-outs (0: never)"
    )
    p.add_argument("--sample-every", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    video = args.video
    if video is None:
        from edgeps.data.video import write_synth_video

        video = str(Path("out/soak/synth.mp4"))
        if not Path(video).is_file():
            write_synth_video(Path(video), 60, (256, 512), seed=11)
    rows = []
    for b in args.bundle:
        r = soak(b, video, args.minutes, args.fail_every, args.sample_every, args.threads)
        rows.append(r)
        print(
            f"{Path(b).name:<16} {r['minutes']:.1f} min  {r['frames']} frames ({r['captured']} captured, "
            f"{r['dropped']} dropped, "
            f"{r['in_flight_at_end']} in flight: {'consistent' if r['counters_consistent'] else 'INCONSISTENT'})  "
            f"{r['fps']:.1f} FPS  RSS {r['rss_first_mb']} -> {r['rss_last_mb']} MB (median of a minute, max "
            f"{r['rss_max_mb']}) ({100 * r['rss_growth']:+.1f} %)  "
            f"max queue {r['max_queue_depth']}  reconnects {r['reconnects']}/{r['source_failures']} failures "
            f"(expected ~{r['expected_failures']})",
            flush=True,
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))
    ok = all(
        r["counters_consistent"] and r["reconnects"] == r["source_failures"] and not r["rss_growth"] > 0.05
        for r in rows
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
