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

import hashlib
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
CALIBRATION_LENGTH = 128  # tokens per calibration text (padded): one shape for every batch
CALIBRATION_BATCH = 32


def texts_digest(texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()[:16]


def export_folder(cache_dir: Path, model_name: str, quantize: str, calibration: str) -> Path:
    import torch

    key = f"{model_name}|{quantize}|{calibration}|torch {torch.__version__}"
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


def export_fp32(model, path: Path) -> None:
    """torch.onnx.export of the model's first module (the transformer), dynamic batch and
    sequence axes."""
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
        with warnings.catch_warnings():  # the tracer's notes on the example: not the user's
            warnings.simplefilter("ignore")
            torch.onnx.export(TokenEmbeddings(network).eval(),
                              tuple(features[n] for n in names), str(path), input_names=names,
                              output_names=["token_embeddings"], dynamic_axes=axes,
                              opset_version=17, dynamo=False)
    except Exception as error:  # the exporter's own failure, as one line
        raise HashIndexError(f"cannot export the model to ONNX ({str(error).splitlines()[0]}); "
                             "use --embed-backend torch") from None


def unquantized_matmuls(graph) -> list[str]:
    """MatMuls left in fp32 by the int8 quantization: activation × activation products
    (attention scores) and those fed by a GELU (the feed-forward output, whose inputs carry
    outliers that one static scale clips: with them quantized, cosine to fp32 fell to 0.93)."""
    constants = {init.name for init in graph.initializer}
    constants |= {out for node in graph.node if node.op_type == "Constant" for out in node.output}
    producer = {out: node for node in graph.node for out in node.output}
    skipped = []
    for node in graph.node:
        if node.op_type != "MatMul":
            continue
        activations = [name for name in node.input if name not in constants]
        fed_by_gelu = any(producer.get(name) is not None and
                          producer[name].op_type in ("Mul", "Gelu", "Erf")
                          for name in activations)
        if len(activations) > 1 or fed_by_gelu:
            skipped.append(node.name)
    return skipped


def quantize_int8(fp32_path: Path, out_path: Path, model, calibration_texts: list[str],
                  scratch: Path) -> None:
    """Static int8 (QDQ, per-channel weights, activation scales from the calibration texts'
    activation ranges). Min-max ranges: on 256 sample texts, cosine to fp32 0.9912 (1st
    percentile 0.985) in 18 s and 3.2 GB peak; 99.999th-percentile histograms gave 0.9922 for
    42 s and 9.8 GB."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    names = model_inputs(model)
    tokenizer = model[0].tokenizer
    batch = min(CALIBRATION_BATCH, len(calibration_texts))  # every batch one shape: the
    calibration_texts = calibration_texts[: len(calibration_texts) // batch * batch]  # collector

    length = min(CALIBRATION_LENGTH, int(getattr(model, "max_seq_length", CALIBRATION_LENGTH)))

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(range(0, len(calibration_texts), batch))

        def get_next(self):
            start = next(self.batches, None)
            if start is None:
                return None
            encoded = tokenizer(calibration_texts[start : start + batch],
                                padding="max_length", truncation=True, max_length=length,
                                return_tensors="np")
            return {name: np.asarray(encoded[name], dtype=np.int64) for name in names}

    prepared = scratch / "prepared.onnx"
    quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(out_path), Batches(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                    nodes_to_exclude=unquantized_matmuls(onnx.load(str(prepared)).graph),
                    calibrate_method=CalibrationMethod.MinMax)


def export_path(cache_dir: Path, model_name: str, quantize: str,
                calibration_texts: list[str] | None = None) -> Path:
    """Where the export for (model, quantization, calibration texts) lives, made or not."""
    calibration = texts_digest(calibration_texts or []) if quantize == "int8" else ""
    return export_folder(cache_dir, model_name, quantize, calibration) / MODEL_FILE


def exported_model(model, model_name: str, quantize: str, cache_dir: Path,
                   calibration_texts: list[str] | None = None) -> Path:
    """The exported model file for (model, quantization, calibration texts), made on first use
    and kept under cache_dir/exports/."""
    if quantize == "int8" and not calibration_texts:
        raise HashIndexError("int8 quantization needs calibration texts (sample documents)")
    folder = export_path(cache_dir, model_name, quantize, calibration_texts).parent
    if (folder / MODEL_FILE).exists():
        return folder / MODEL_FILE
    # a locked staging folder beside the export, renamed into place when complete; the
    # leftovers of an export killed mid-way are removed by the next one (store/publish.py)
    staging = Staging(folder, flag="--cache-dir")
    with staging as work:
        export_fp32(model, work / MODEL_FILE)
        fault_point("export")
        if quantize == "int8":
            fp32 = work / "fp32.onnx"
            os.replace(work / MODEL_FILE, fp32)
            try:
                quantize_int8(fp32, work / MODEL_FILE, model, calibration_texts, work)
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
