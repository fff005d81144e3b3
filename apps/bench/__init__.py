"""``edgeps bench`` internals (installed as ``edgeps.apps.bench``): torch-free except the export.

Modules: ``measure`` (timing loop, one bundle per fresh worker process), ``worker`` (the
``python -m edgeps.apps.bench.worker`` entry point), ``device`` (CPU / ISA / versions),
``cache`` (checkpoint -> bundle matrix, exported once and reused), ``report`` (JSON schema,
validator, tables), ``chart`` (PNG drawn with OpenCV).

JSON schema ``edgeps-bench/1`` (``report.SCHEMA``), one file per run::

    {
      "schema": "edgeps-bench/1",
      "created": "2026-05-09T10:00:00+00:00",          # UTC, ISO 8601
      "edgeps_version": "0.1.0",
      "device": {                                       # the machine (device.describe_device)
        "cpu_model": str, "cpu_count": int, "isa_flags": [str], "machine": str,
        "platform": str, "python": str, "versions": {package: version}
      },
      "config": {"threads": int | null, "warmup": int, "iters": int, "data": str,
                 "frames": int, "device": str, "isolation": "subprocess" | "in-process"},
      "results": [{                                     # one per bundle
        "bundle": str, "name": str, "format": str, "backend": str, "precision": str,
        "input_size": [H, W], "threads": int | null,
        "device": str,                                  # device actually used (rt.info)
        "providers": [str] | null,                      # ONNX Runtime providers actually used
        "fps": float,                                   # end-to-end rt.predict calls per second
        "infer_fps": float,                             # 1000 / latency_ms.infer.p50 (model only)
        "latency_ms": {stage: {"min", "p50", "p90", "p99", "mean"}}
                                                        # stage: total, preprocess, infer, postprocess
        "peak_rss_mb": float,                           # peak RSS of the measuring process
        "peak_rss_source": "VmHWM" | "ru_maxrss",
        "torch_imported": bool,                         # "torch" in sys.modules after measuring
        "isolation": "subprocess" | "in-process",
        "versions": {package: version}                  # of the measuring interpreter
      }]
    }

``report.validate_bench_json(obj)`` checks a loaded file against it and raises
:class:`edgeps.errors.FormatError` naming the first bad field (``results[0].latency_ms.infer.p50``).
"""
