"""A trained run as one ONNX graph: the network and the run's anomaly map (``ssae export``).

The graph takes images ``image``, float32 B x C x H x W in [0, 1] at the run's image size, and
returns their anomaly maps ``anomaly_map``, float32 B x H x W, as ``ssae evaluate`` and ``ssae
predict`` compute them with the run's calibration (validation data only):

1. the reconstruction F(X): X padded at the bottom and right to a multiple of 8
   (:func:`ssae.scoring.pad_to_8`), the network, cropped back;
2. the calibrated Diff (eq. 2, 1 - SSIM, or the low-pass difference; :func:`ssae.scoring.difference`);
3. G_k^n (eq. 3) with the calibrated n and k, then the avgmap weighting of eq. (14) (t > 0) or
   the standardised map (ours), with the run's ``avgmap.npy`` and ``stdmap.npy`` as constants
   (:func:`ssae.evaluation.finish_map`).

The batch size is free; H and W are fixed (the run's ``data.image_size``). The graph computes in
float32 throughout, as ssae does by default (``--precision fp32``, :mod:`ssae.precision`). The
image score and the thresholds are not in the graph; the model's metadata (``metadata_props``,
JSON values) holds them (``reduce``, ``threshold`` for pixels, ``image_threshold`` for image
scores) with the scoring settings, the input it takes (``input``: shape, channels, image size,
value range; also ``channels``, ``height``, ``width``) and ``precision``. Exporting needs the ``onnx``
package (``pip install 'ssae[export]'``); the TorchScript exporter of ``torch.onnx`` is used,
which needs nothing else.
"""
from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path

import torch

from . import scoring as S
from .errors import SsaeError
from .scoring import finish_map
from .runs import read_calibration
from .runs import load_model

#: ONNX operator set of the exported graph
OPSET = 17
INPUT, OUTPUT = "image", "anomaly_map"


class AnomalyMapGraph(torch.nn.Module):
    """The network and the calibrated anomaly map as one module: B x C x H x W images in [0, 1]
    to B x H x W maps (see the module docstring); ``cal`` and ``stats`` are
    :func:`ssae.evaluation.read_calibration`'s."""

    def __init__(self, model: torch.nn.Module, cal: dict, stats):
        super().__init__()
        # a copy: float32, contiguous and in eval mode without changing the caller's model
        self.model = copy.deepcopy(model).float().to(memory_format=torch.contiguous_format).eval()
        self.diff, self.n, self.k, self.t = cal["diff"], int(cal["n"]), int(cal["k"]), int(cal["t"])
        self.rescale = bool(cal.get("avgmap_rescale", False))
        self.standardize, self.two_sided = bool(cal["standardize"]), bool(cal["two_sided"])
        self.weighted = stats is not None and (self.t > 0 or self.standardize)
        if self.weighted:
            self.register_buffer("avg", torch.from_numpy(stats.avg).float()[None, None])
            self.register_buffer("std", None if stats.std is None else torch.from_numpy(stats.std).float()[None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = self.model(S.pad_to_8(x))[..., :h, :w]
        d = S.difference(x, y, self.diff)
        avg, std = (self.avg, self.std) if self.weighted else (None, None)
        return finish_map(d, self.n, self.k, avg, std, self.t, self.standardize, self.two_sided,
                          self.rescale)[:, 0]


def image_size(run_dir, cfg, stats) -> tuple[int, int]:
    """(H, W) of the exported graph: the run's ``data.image_size``, or for a run at native image
    size the size of its validation maps when they share one; else a one-line error."""
    if cfg.data.image_size is not None:
        return cfg.data.image_size, cfg.data.image_size
    if stats is not None:
        return tuple(stats.avg.shape)
    raise SsaeError(f"{run_dir} reads images at their native sizes (data.image_size None), which differ; an ONNX "
                    f"graph needs one size: train with --image-size N to export")


def write_graph(graph: AnomalyMapGraph, channels: int, h: int, w: int, f) -> None:
    """Trace ``graph`` for B x ``channels`` x ``h`` x ``w`` inputs (B free) into the ONNX file or
    binary stream ``f``."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on constants (the image size, avgmap's scale)
        torch.onnx.export(graph, (torch.rand(2, channels, h, w),), f, dynamo=False,
                          input_names=[INPUT], output_names=[OUTPUT], opset_version=OPSET,
                          dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}})


def session(model, cal: dict, stats, channels: int, size: tuple[int, int], threads: int | None = None):
    """An onnxruntime ``InferenceSession`` of :class:`AnomalyMapGraph` (the network, Diff, G_k^n
    and the calibration's weighting) built in memory, for B x ``channels`` x H x W float32 images
    at ``size`` = (H, W); ``threads`` intra-op threads (default: torch's). What
    ``Detector(engine="onnxruntime")`` scores with."""
    import io

    try:
        import onnxruntime as ort
    except ImportError:
        raise SsaeError("the onnxruntime engine needs the onnxruntime package: pip install onnxruntime "
                        "(or pip install 'ssae[export]')") from None
    buf = io.BytesIO()
    write_graph(AnomalyMapGraph(model, cal, stats).eval(), channels, *size, buf)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads or torch.get_num_threads(), 1
    return ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])


def export(run_dir, out) -> dict:
    """Write the run (or packed model folder) ``run_dir`` as the ONNX graph ``out`` (written to
    a temporary name, then renamed); returns the metadata stored in it."""
    run_dir, out = Path(run_dir), Path(out)
    try:
        import onnx
    except ImportError:
        raise SsaeError("ssae export needs the onnx package: pip install onnx "
                        "(or pip install 'ssae[export]')") from None
    model, cfg = load_model(run_dir, "cpu")
    cal, stats = read_calibration(run_dir)
    h, w = image_size(run_dir, cfg, stats)
    graph = AnomalyMapGraph(model, cal, stats).eval()
    c = cfg.model.in_channels
    meta = {"ssae_run": run_dir.name,
            "input": f"{INPUT}: float32 B x {c} x {h} x {w} in [0, 1] ({h} x {w} px, {c} channel"
                     f"{'s' if c != 1 else ''}, {'grey' if c == 1 else 'RGB'})",
            "channels": c, "height": h, "width": w, "precision": "fp32",
            **{key: cal.get(key) for key in ("diff", "n", "k", "t", "standardize", "two_sided", "reduce",
                                             "threshold", "image_threshold", "threshold_method")}}
    if out.is_dir():
        raise SsaeError(f"cannot write {out}: it is a folder; name the .onnx file to write")
    tmp = out.with_name(out.name + ".tmp")
    try:
        write_graph(graph, c, h, w, str(tmp))
        proto = onnx.load(str(tmp))
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, json.dumps(value)
        onnx.save(proto, str(tmp))
        os.replace(tmp, out)
    except OSError as e:
        raise SsaeError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return meta
