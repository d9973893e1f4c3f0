"""The inference runtimes a text model can run in, by name, with the quantizations each takes.

`torch` is sentence-transformers' own encode. `onnx` (ONNX Runtime) and `openvino` run the
model's transformer exported to ONNX (export.py) and hand its token embeddings back to the
model's own pooling and normalisation modules. Every setting here is batch-invariant (a
text's vector does not depend on the texts beside it): fp32, or int8 with static activation
scales calibrated once on sample documents. Dynamic int8 quantization, which scales each
batch by its own range, is deliberately absent: it moved a text's code when its batch changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from hashindex.errors import HashIndexError


@dataclass(frozen=True)
class Runtime:
    name: str
    help: str
    quantizations: tuple[str, ...]


RUNTIMES = {
    "torch": Runtime("torch", "sentence-transformers' encode in PyTorch, fp32", ("none",)),
    "onnx": Runtime("onnx", "ONNX Runtime over the exported transformer, graph-optimised",
                    ("none", "int8")),
    "openvino": Runtime("openvino", "OpenVINO over the exported transformer (the default: the "
                        "fastest batch-invariant setting on our CPUs)", ("none", "int8")),
}
DEFAULT_RUNTIME = "openvino"
QUANTIZATIONS = ("none", "int8")
# a build's default: int8 where the runtime takes it (openvino int8 embeds 1.4x as fast as
# fp32 for P@100 within 0.004: benchmarks/results/embed_speed.md), none for torch
AUTO = "auto"
# A build's text model keeps its own fp32 numbers unless asked: int8 is faster (~1.4x) but
# moves the vectors enough to cost recall against the model's own (an exact scan of an int8
# model's vectors kept 0.944 of the fp32 top-10 on 1 400 short texts, fp32 0.995): `--quantize
# int8` (or auto) is the fast setting, one flag away.
DEFAULT_QUANTIZE = "none"


def resolve_quantization(backend: str, quantize: str) -> str:
    """`quantize` with AUTO made concrete for `backend` (an unknown backend is left to
    check_runtime's error)."""
    if quantize != AUTO:
        return quantize
    runtime = RUNTIMES.get(backend)
    return "int8" if runtime is not None and "int8" in runtime.quantizations else "none"


def check_runtime(name: str, quantize: str = "none") -> Runtime:
    """The runtime called `name`, if it takes `quantize`; else a one-line error."""
    quantize = resolve_quantization(name, quantize)
    if name not in RUNTIMES:
        raise HashIndexError(f"--embed-backend {name!r} is unknown; choose one of "
                             f"{', '.join(RUNTIMES)}")
    runtime = RUNTIMES[name]
    if quantize not in runtime.quantizations:
        raise HashIndexError(f"--quantize {quantize!r} is not available with --embed-backend "
                             f"{name}; it takes {', '.join(runtime.quantizations)} or {AUTO}")
    return runtime


def check_embedding_settings(backend: str, quantize: str = "none", device: str = "cpu",
                             workers: int = 1) -> Runtime:
    """Every embedding setting at once, one line naming the flag (the build checks them before
    reading anything; the Embedder again for the Python API)."""
    runtime = check_runtime(backend, quantize)
    if device != "cpu" and backend != "torch":
        raise HashIndexError(f"--device {device} needs --embed-backend torch; {backend} runs "
                             "on the CPU here")
    if workers < 1:
        raise HashIndexError(f"--embed-workers {workers} must be at least 1")
    return runtime
