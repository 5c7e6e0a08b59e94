"""`framequeue serve-models`: the model repository over the Open Inference Protocol v2 (HTTP and gRPC).

    http.py, grpc.py   transports: parse, call the service, map the result and errors
    dataplane.py       protocol-neutral: health, metadata, infer (what both transports call)
    manager.py         loads versions on first use under a memory budget, LRU unload, deferred loads
    batcher.py         per-version dynamic batcher: merge callers' rows, run, split the outputs back
    runner.py          one version in an ONNX Runtime session (CUDA when present, CPU otherwise)
    tensors.py         OIP datatypes <-> numpy, JSON and raw (binary) tensor contents
    metrics.py         the Prometheus view of the batchers' counters (/metrics)
    serve.py           the click command that starts both transports in one event loop
"""
