"""A sentence-transformers model's transformer exported to ONNX, once, into the cache folder.

Only the transformer is exported (token ids → token embeddings); pooling and normalisation stay
the model's own modules. An fp32 export is deterministic (same model, same torch: same bytes),
so an index records its checksum and a re-export on another machine is checked against it. An
int8 export is calibrated on sample documents (static activation scales, so batch-invariant)
and an index carries its file, since the calibration cannot be redone without those documents.
Exports are written into a temporary folder and renamed into place: a killed export leaves no
half file for the next run to load.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import warnings
from pathlib import Path

import numpy as np

from hashindex.errors import HashIndexError
from hashindex.faults import fault_point
from hashindex.store.manifest import sha256_file
from hashindex.store.publish import Staging

EXPORTS_DIR = "exports"
MODEL_FILE = "model.onnx"
CHECKSUM_FILE = "model.onnx.sha256"
COMPILED_DIR = "openvino-compiled"  # OpenVINO's cache of compiled models (0.24 → 0.05 s)
INPUT_NAMES = ("input_ids", "token_type_ids", "attention_mask")
CALIBRATION_BATCH = 16  # texts per calibration batch
QUANTIZER = "nncf-smoothquant"  # in an int8 export's cache key: another quantizer, other file
# How the transformer's attention is traced. "eager": matmul, softmax, matmul, a pattern
# OpenVINO fuses into one attention kernel: 1.2-1.3x the inference of torch's SDPA trace
# ("", what exports before it used and older indexes' checksums name) and, in int8, closer to
# torch fp32 (bbc-news mean cosine 0.9937 against 0.9899). The fused kernel's sums depend on
# the padded length, so texts are padded to fixed lengths (padding.py).
EXPORT_METHOD = "eager-attention"
LEGACY_EXPORT_METHOD = ""

log = logging.getLogger("hashindex")


def texts_digest(texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()[:16]


def export_folder(cache_dir: Path, model_name: str, quantize: str, calibration: str,
                  method: str = EXPORT_METHOD) -> Path:
    # torch's version from its metadata: importing torch would cost a query ~1 s
    from importlib.metadata import version

    quantizer = f"|{QUANTIZER}" if quantize == "int8" else ""
    traced = f"|{method}" if method else ""  # legacy exports keep the keys they had
    key = f"{model_name}|{quantize}{quantizer}|{calibration}|torch {version('torch')}{traced}"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_name).strip("_")[-60:]
    return (Path(cache_dir) / EXPORTS_DIR /
            f"{slug}-{quantize}-{hashlib.sha256(key.encode()).hexdigest()[:12]}")


def export_checksum(path: Path) -> str:
    """The sha256 of an exported model file: from the checksum written beside it at export
    time (hashing 90 MB costs a cold query ~0.2 s), else computed."""
    beside = Path(path).parent / CHECKSUM_FILE
    if beside.exists():
        return beside.read_text().strip()
    return sha256_file(path)


def model_inputs(model) -> list[str]:
    """The transformer's inputs among INPUT_NAMES, as its tokenizer produces them."""
    features = model.preprocess(["a"])
    return [name for name in INPUT_NAMES if name in features]


@contextlib.contextmanager
def attention_traced_as(network, method: str):
    """The network with the attention implementation `method` names, for the trace only."""
    setter = getattr(network, "set_attn_implementation", None)
    before = getattr(getattr(network, "config", None), "_attn_implementation", None)
    if method != EXPORT_METHOD or setter is None or before in (None, "eager"):
        yield
        return
    try:
        setter("eager")
    except (ValueError, NotImplementedError, AttributeError):  # a model without eager: as is
        yield
        return
    try:
        yield
    finally:
        setter(before)


def export_fp32(model, path: Path, method: str = EXPORT_METHOD) -> None:
    """torch.onnx.export of the model's first module (the transformer), dynamic batch and
    sequence axes, its attention traced as `method` says."""
    import torch

    transformer = model[0]
    network = getattr(transformer, "auto_model", None) or getattr(transformer, "model", None)
    if network is None:
        raise HashIndexError(f"the model's first module ({type(transformer).__name__}) is not a "
                             "transformer this exporter knows; use --embed-backend torch")
    names = model_inputs(model)

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner(**dict(zip(names, inputs))).last_hidden_state

    features = model.preprocess(["an example text", "another, somewhat longer, example text"])
    axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "token_embeddings"]}
    try:
        with warnings.catch_warnings(), attention_traced_as(network, method):
            warnings.simplefilter("ignore")  # the tracer's notes on the example: not the user's
            torch.onnx.export(TokenEmbeddings(network).eval(),
                              tuple(features[n] for n in names), str(path), input_names=names,
                              output_names=["token_embeddings"], dynamic_axes=axes,
                              opset_version=17, dynamo=False)
    except Exception as error:  # the exporter's own failure, as one line
        raise HashIndexError(f"cannot export the model to ONNX ({str(error).splitlines()[0]}); "
                             "use --embed-backend torch") from None


def quantize_int8(fp32_path: Path, out_path: Path, model, calibration_texts: list[str]
                  ) -> None:
    """Static int8 by NNCF (OpenVINO's quantizer) on the ONNX graph: every MatMul in int8
    (QDQ, static activation scales from the calibration texts), SmoothQuant moving the
    activations' outlier channels into the weights first. Our earlier quantizer
    (onnxruntime's quantize_static) had to leave the feed-forward outputs and attention in
    fp32 (one static scale clipped their outliers: cosine 0.93), so it ran barely faster than
    fp32; with SmoothQuant all of them quantize (300 sample texts: 9 s, 2.1 GB peak; short
    texts 1.5x the fp32 speed in OpenVINO at cosine 0.998 to torch fp32, long 1.4x at 0.990).
    Calibration batches are padded per batch, as embedding pads them."""
    import nncf
    import onnx

    names = model_inputs(model)
    tokenizer = model[0].tokenizer
    length = int(getattr(model, "max_seq_length", 256))
    batches = []
    for start in range(0, len(calibration_texts), CALIBRATION_BATCH):
        encoded = tokenizer(calibration_texts[start : start + CALIBRATION_BATCH], padding=True,
                            truncation=True, max_length=length, return_tensors="np")
        batches.append({name: np.asarray(encoded[name], dtype=np.int64) for name in names})
    nncf.set_log_level(logging.ERROR)  # its notes and progress bars are not the user's output
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        quantized = nncf.quantize(onnx.load(str(fp32_path)), nncf.Dataset(batches),
                                  model_type=nncf.ModelType.TRANSFORMER,
                                  preset=nncf.QuantizationPreset.MIXED,
                                  subset_size=len(calibration_texts))
    onnx.save(quantized, str(out_path))


def export_path(cache_dir: Path, model_name: str, quantize: str,
                calibration_texts: list[str] | None = None, method: str = EXPORT_METHOD
                ) -> Path:
    """Where the export for (model, quantization, calibration texts, trace) lives, made or
    not."""
    calibration = texts_digest(calibration_texts or []) if quantize == "int8" else ""
    return export_folder(cache_dir, model_name, quantize, calibration, method) / MODEL_FILE


def exported_model(model, model_name: str, quantize: str, cache_dir: Path,
                   calibration_texts: list[str] | None = None, method: str = EXPORT_METHOD
                   ) -> Path:
    """The exported model file for (model, quantization, calibration texts, trace), made on
    first use and kept under cache_dir/exports/."""
    if quantize == "int8" and not calibration_texts:
        raise HashIndexError("int8 quantization needs calibration texts (sample documents)")
    folder = export_path(cache_dir, model_name, quantize, calibration_texts, method).parent
    if (folder / MODEL_FILE).exists():
        return folder / MODEL_FILE
    # a locked staging folder beside the export, renamed into place when complete; the
    # leftovers of an export killed mid-way are removed by the next one (store/publish.py)
    staging = Staging(folder, flag="--cache-dir")
    with staging as work:
        export_fp32(model, work / MODEL_FILE, method)
        fault_point("export")
        if quantize == "int8":
            log.info("calibrating the int8 text model on %d texts (once per model, "
                     "calibration set and machine; ~10-20 s): kept in %s",
                     len(calibration_texts), folder)
            fp32 = work / "fp32.onnx"
            os.replace(work / MODEL_FILE, fp32)
            try:
                quantize_int8(fp32, work / MODEL_FILE, model, calibration_texts)
            except Exception as error:  # the quantizer's own failure, as one line
                raise HashIndexError(f"cannot quantize {model_name!r} to int8 "
                                     f"({str(error).splitlines()[0]}); use --quantize none"
                                     ) from None
            for leftover in work.iterdir():
                if leftover.name != MODEL_FILE:
                    leftover.unlink()
        # read at every load instead of hashing the file again
        (work / CHECKSUM_FILE).write_text(sha256_file(work / MODEL_FILE) + "\n")
        if not (folder / MODEL_FILE).exists():  # else another process published it: keep theirs
            try:
                staging.publish()
            except OSError:
                if not (folder / MODEL_FILE).exists():
                    raise
    return folder / MODEL_FILE
