"""Command line: ``ssae train | evaluate | predict | pack | export``.

Expected failures (bad input, incompatible run directories, NaN losses) print one line
``ssae: error: ...`` naming the file or cause and exit with status 2. An interrupted training
(Ctrl-C) keeps its last checkpoint; the same command resumes it.
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

from .config import PROFILES, check, override, profile
from .errors import SsaeError
from .heap import keep_freed_memory


#: ``corruption.METHODS``, listed here so that parsing the command line does not import torch
#: (a test keeps the two equal)
CORRUPTIONS = ("elastic", "cutout", "swap", "occlusion", "none")
#: ``detector.ENGINES``, listed here for the same reason (the same test keeps them equal)
ENGINES = ("auto", "torch", "onnxruntime")

#: settings files shipped with ssae (``--settings NAME`` reads ``SETTINGS_DIR / NAME.txt``)
SETTINGS_DIR = Path(__file__).parent / "settings"


def parse_value(text: str):
    """The value of a ``--set SECTION.FIELD=VALUE`` item as Python: ``none``/``null`` is None,
    ``true``/``false`` a bool, a Python literal (number, tuple, quoted string) itself, anything
    else the text (``--set corruption.method=swap``). :func:`ssae.config.override` then checks
    it against the field's type."""
    if text.lower() in ("none", "null"):
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def read_settings(spec: str) -> list[str]:
    """The ``SECTION.FIELD=VALUE`` items of a settings file, in order (``--settings``).

    ``spec`` is a path, or the name of a file shipped in :data:`SETTINGS_DIR` (without
    ``.txt``). One item per line; blank lines and ``#`` comments (a whole line, or after
    white space at the end of one) are skipped. A missing file or a malformed line is a one-line
    :class:`SsaeError` naming the file (and line)."""
    path = Path(spec)
    if not path.is_file() and "/" not in spec and (SETTINGS_DIR / f"{spec}.txt").is_file():
        path = SETTINGS_DIR / f"{spec}.txt"
    if not path.is_file():
        shipped = ", ".join(sorted(f.stem for f in SETTINGS_DIR.glob("*.txt"))) or "none"
        raise SsaeError(f"--settings {spec}: no such file (settings shipped with ssae: {shipped})")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise SsaeError(f"cannot read settings file {path}: {e}")
    items = []
    for number, line in enumerate(lines, 1):
        item = re.split(r"\s#", line, maxsplit=1)[0].strip()
        if not item or item.startswith("#"):
            continue
        key, sep, _ = item.partition("=")
        if not sep or "." not in key or " " in key.strip():
            raise SsaeError(f"{path}:{number}: expects SECTION.FIELD=VALUE, got {line.strip()!r}")
        items.append(item)
    return items


def _tty() -> bool:
    """Progress bars only on a terminal: logs and pipes get one clean line per message."""
    return sys.stderr.isatty()


def build_config(args):
    """The profile's Config with the command line's settings applied: ``--settings`` files
    first, then the named flags (``--seed``, ``--corruption``, ...), then ``--set``; a later
    one wins. Every setting is range-checked (:func:`ssae.config.check`)."""
    cfg = profile(args.profile)
    sections: dict[str, dict] = {}

    def apply(items):
        for item in items:
            key, sep, value = item.partition("=")
            section, dot, field = key.strip().partition(".")
            if not sep or not dot:
                raise SsaeError(f"--set expects section.field=value, got {item!r}")
            sections.setdefault(section, {})[field] = parse_value(value.strip())

    apply(i for spec in getattr(args, "settings", None) or [] for i in read_settings(spec))
    if args.objective is not None:
        sections.setdefault("train", {})["objective"] = args.objective
    if args.seed is not None:
        sections.setdefault("train", {})["seed"] = args.seed
    if args.steps is not None:
        sections.setdefault("train", {})["steps"] = args.steps
    if args.minutes is not None:
        sections.setdefault("train", {})["max_minutes"] = args.minutes
    if args.image_size is not None:
        size = args.image_size
        if size != "native" and not size.isdigit():  # its range is checked with every other setting's
            raise SsaeError(f"--image-size expects a number of pixels (at least 8) or 'native', got {size!r}")
        sections.setdefault("data", {})["image_size"] = None if size == "native" else int(size)
    if args.corruption is not None:
        sections.setdefault("corruption", {})["method"] = args.corruption
    apply(args.set or [])
    try:
        cfg = override(cfg, **sections)
    except ValueError as e:
        raise SsaeError(str(e))
    if getattr(args, "curve", False) and "curve" not in sections.get("train", {}):
        from .training import curve_grid
        cfg.train.curve = curve_grid(cfg.train.steps)
    return check(cfg)


def check_device(device: str) -> str:
    """``device`` if torch can use it here, else a one-line error (``--device gpu``, or
    ``cuda`` on a machine without CUDA)."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise SsaeError(f"--device expects cpu, cuda or cuda:N, got {device!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SsaeError(f"--device {device}: no CUDA device is available here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise SsaeError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type != "cpu":
        raise SsaeError(f"--device expects cpu, cuda or cuda:N, got {device!r}")
    return device


def cmd_train(args) -> int:
    from .data import load_split
    from .runs import check_train_folder
    from .pipeline import train_until_restored
    from .training import init_distributed

    check_train_folder(args.out)
    args.device = init_distributed(check_device(args.device))
    cfg = build_config(args)
    split = load_split(args.data, cfg.data, seed=cfg.train.seed)
    print(f"data {split.name}: {len(split.train)} train, {len(split.val)} validation, "
          f"{len(split.test)} test images, {split.channels} channel(s)"
          + ("" if split.has_masks else "; no pixel masks: image-level metrics only"), flush=True)
    chosen, attempts = train_until_restored(cfg, split, args.out, args.retries, device=args.device,
                                            data_spec=args.data, progress=True if _tty() else "lines")
    for a in attempts:
        print(f"trained {a['steps']} steps in {a['seconds']:.0f} s (stopped by {a['stopped_by']}); "
              f"run directory {a['run_dir']}", flush=True)
    if args.retries > 0:  # with --retries, the last line names the run to use, retried or not
        checks = ", ".join(f"{a['run_dir'].name} " + ("n/a" if a["restoration"] is None else f"{a['restoration']:.2f}")
                           for a in attempts)  # None: no calibration (pipeline.train_until_restored)
        print(f"use run directory {chosen} (restoration checks: {checks})", flush=True)
    _warn_restoration(Path(chosen))
    return 0


def cmd_evaluate(args) -> int:
    from .evaluation import empty_masks_warning, evaluate
    from .runs import read_run_config, write_json

    check_device(args.device)
    data = args.data
    if data is None:
        _, meta = read_run_config(Path(args.run_dir))
        data = meta.get("data")
    res = evaluate(args.run_dir, data, device=args.device, progress=_tty(), precision=args.precision)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_json(Path(args.json), res)
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    print(f"{res['dataset']}: image AUROC {fmt(res['image_auroc'])}, pixel AUROC {fmt(res['pixel_auroc'])}, "
          f"AUPRO {fmt(res['aupro'])} ({res['n_test_images']} test images, {res['metrics_note']}; "
          f"{res['precision']})")
    _say(empty_masks_warning(res))
    _warn_restoration(Path(args.run_dir))
    return 0


def _say(line: str | None) -> None:
    """Print a warning or note of the library (``ssae: warning: ...``) on stderr, if any."""
    if line:
        print(f"ssae: {line}", file=sys.stderr, flush=True)


def _warn_restoration(run_dir: Path) -> None:
    """Print the restoration check's warning (see ssae.evaluation.restoration_warning), if any."""
    from .runs import RunDir
    from .calibration import restoration_warning

    run = RunDir(run_dir)
    if run.is_calibrated():
        _say(restoration_warning(run.read_calibration()[0]))


def cmd_predict(args) -> int:
    from .detector import image_paths, resolve
    from .predict import predict, stretch_note
    from .runs import read_run_config

    run_dir, images = (args.model, args.paths) if args.model else (args.paths[0], args.paths[1:])
    if not images:
        raise SsaeError("no images given to predict: ssae predict RUN_DIR IMAGE ... or --model DIR IMAGE ...")
    run_dir, images = resolve(run_dir), image_paths(images)
    out = predict(run_dir, images, args.out, device=check_device(args.device), progress=_tty(),
                  precision=args.precision, overwrite=args.overwrite, engine=args.engine)
    print(f"wrote overlays, masks and scores.csv for {len(images)} image(s) to {out} (model {run_dir})")
    _say(stretch_note(images, read_run_config(run_dir)[0].data.image_size))
    return 0


def cmd_pack(args) -> int:
    from .release import pack

    if args.samples_only:
        from .samples import add_samples
        index = add_samples(args.run_dir, args.data, device=check_device(args.device))
        print(f"stored {len(index['samples'])} test images with their maps in {args.run_dir}/samples "
              f"({index['image_format']}); weights, config and metrics unchanged")
        return 0
    if not args.out:
        raise SsaeError("ssae pack needs --out MODEL_FOLDER (or --samples-only to add samples to a packed model)")
    if args.draws < 0:
        raise SsaeError(f"--draws must be a number of calibrations >= 0, got {args.draws}")
    res = pack(args.run_dir, args.out, args.data, device=check_device(args.device), blur=args.blur,
               progress=_tty(), draws=args.draws, precision=args.precision)
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    print(f"packed {args.run_dir} into {args.out}: image AUROC {fmt(res['image_auroc'])}, pixel AUROC "
          f"{fmt(res['pixel_auroc'])}, AUPRO {fmt(res['aupro'])} with its float16 weights")
    return 0


def cmd_export(args) -> int:
    from .export import INPUT, OUTPUT, export

    meta = export(args.run_dir, args.out)
    c = meta["channels"]
    print(f"wrote {args.out}: takes {meta['height']} x {meta['width']} px images with {c} channel"
          f"{'s' if c != 1 else ''} ({'grey' if c == 1 else 'RGB'}): input {INPUT!r} float32 B x {c} x "
          f"{meta['height']} x {meta['width']} in [0, 1], output {OUTPUT!r} B x {meta['height']} x {meta['width']} "
          f"(float32; Diff {meta['diff']}, n {meta['n']}, k {meta['k']}, t {meta['t']}, standardised "
          f"{meta['standardize']}); thresholds and input size in its metadata")
    return 0


def _precision_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="the network's precision: fp32 (default, the same maps on every machine) or bf16 "
                        "(autocast; faster on GPUs and CPUs with native bf16); recorded with the results")


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ssae", description="Self-supervised autoencoders for visual anomaly "
                                "detection (Bauer, Nakajima, M\u00fcller): train, evaluate, predict, pack, export.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model on a data set")
    t.add_argument("--data", required=True, help="folder (MVTec AD or MTD layout) or embedded:<category>")
    t.add_argument("--out", required=True, help="run directory: a new path, an empty folder, or a run folder "
                   "of the same settings (resumed); any other folder is refused")
    t.add_argument("--profile", choices=PROFILES, default="cpu")
    t.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    t.add_argument("--objective", type=int, choices=(1, 4))
    t.add_argument("--seed", type=int)
    t.add_argument("--steps", type=int, help="optimiser steps (overrides the profile)")
    t.add_argument("--minutes", type=float, help="wall-clock training budget")
    t.add_argument("--image-size", help="pixels (square) or 'native'")
    t.add_argument("--corruption", choices=CORRUPTIONS)
    t.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE",
                   help="any config field, e.g. --set score.diff=ssim --set model.width=0.5")
    t.add_argument("--settings", action="append", metavar="FILE",
                   help="a file of SECTION.FIELD=VALUE lines, applied before the other options (which win); "
                        "a bare name reads the file shipped with ssae (ssae/settings/NAME.txt), e.g. "
                        "--settings mtd-64px")
    t.add_argument("--curve", action="store_true",
                   help="learning curve: evaluate the model on the test split at steps 250, 500, 1000, ... "
                        "and at its last step, into RUN/curve.jsonl (evaluation time does not count "
                        "against --minutes)")
    t.add_argument("--retries", type=int, default=0, metavar="N",
                   help="when the model fails the restoration check, train again with other initial weights "
                        "(train.init_seed = seed + 1000 k) into OUT-retryK, at most N times; the last line "
                        "names the run directory to use (default 0)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="metrics of a trained run on a data set's test split")
    e.add_argument("run_dir")
    e.add_argument("--data", help="defaults to the data the run was trained on")
    e.add_argument("--json", help="write the metrics to this JSON file")
    e.add_argument("--device", default="cpu")
    _precision_option(e)
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("predict", help="heatmaps, masks and scores for your own images",
                       usage="ssae predict (RUN_DIR | --model MODEL) IMAGE_OR_FOLDER [...] --out OUT")
    r.add_argument("paths", nargs="+", metavar="RUN_DIR IMAGE",
                   help="a run directory, then images or folders of images (without --model)")
    r.add_argument("--model", metavar="MODEL",
                   help="a run directory, a packed model folder (e.g. models/aitex-fabric01/ssae) or, from a "
                        "source checkout, a reference model's name (aitex-fabric01, mtd/plain); then every "
                        "positional argument is an image or a folder of images")
    r.add_argument("--out", required=True, help="folder for overlays, masks and scores.csv")
    r.add_argument("--overwrite", action="store_true", help="write over earlier predictions in --out")
    r.add_argument("--device", default="cpu")
    r.add_argument("--engine", choices=ENGINES, default="auto",
                   help="what computes the maps: torch, or onnxruntime (the graph of ssae export, float32 on "
                        "the CPU; faster, needs the onnxruntime package); auto (default): onnxruntime where it "
                        "can run the model, else torch")
    _precision_option(r)
    r.set_defaults(func=cmd_predict)

    k = sub.add_parser("pack", help="a finished run as a small shareable model folder (float16 safetensors, "
                                    "calibration, curve, recorded metrics)")
    k.add_argument("run_dir")
    k.add_argument("--out", help="model folder to write (replaced when it exists)")
    k.add_argument("--samples-only", action="store_true", help="only store test images with the model's "
                   "maps in RUN_DIR/samples (a packed model folder; weights, config and metrics unchanged)")
    k.add_argument("--data", help="defaults to the data the run was trained on")
    k.add_argument("--blur", action="store_true", help="also record the blur reference's metrics (blur.json)")
    k.add_argument("--draws", type=int, default=8, help="other calibrations (draws of the validation proxy) "
                   "evaluated beside the recorded one, to show the spread chance gives (default 8; 0: none)")
    k.add_argument("--device", default="cpu")
    _precision_option(k)
    k.set_defaults(func=cmd_pack)

    x = sub.add_parser("export", help="a trained run as one ONNX graph: images in, anomaly maps out "
                                      "(needs the onnx package)")
    x.add_argument("run_dir", help="a finished run directory or a packed model folder")
    x.add_argument("--out", required=True, help="the .onnx file to write")
    x.set_defaults(func=cmd_export)

    return p


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    keep_freed_memory()  # every command runs the network on the CPU at some point (ssae.heap)
    try:
        return int(args.func(args) or 0)
    except SsaeError as e:
        print(f"ssae: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # e.g. --json naming a folder, --out naming a file, a full disk
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        print(f"ssae: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ssae: interrupted; the last checkpoint is kept, rerun the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
