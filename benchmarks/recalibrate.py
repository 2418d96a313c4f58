"""Recalibrate a trained run with other scoring settings and evaluate it on the test split.

The run folder is not changed: the calibration (on validation data only, as in ``ssae
evaluate``) is redone in memory with the run's stored config plus the ``--set`` overrides, then
the test metrics are computed with what it chose. The book's chapter "What moves the numbers on
real defects" reads such rows (``benchmarks/results/``), e.g. the same trained models with and
without standardised maps:

    python benchmarks/recalibrate.py runs/bench/mtd-ssae --data ../shared/data/mtd \\
        --set "calibration.standardize=()" --set "calibration.standardize=(False,True)"

Each ``--set`` group is one variant; separate several settings of one variant with ``;``.
``--label NAME:METHOD:TAG`` writes the run's data name, method and tag (as ``cpu.py`` names
them) into the ``--json`` rows, so that recalibrated runs can be paired with ``cpu.py``'s rows
by tag; each row also carries the run's training steps and seconds.
"""
from __future__ import annotations

import _checkout  # noqa: F401  (the ssae of this checkout, installed or not)

import argparse
import json
import sys

import torch


def main(argv=None) -> int:
    from ssae.cli import parse_value
    from ssae.config import override
    from ssae.data import load_split
    from ssae.errors import SsaeError
    from ssae.calibration import calibrate_model
    from ssae.evaluation import evaluate_model
    from ssae.runs import load_model, read_summary

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--data", required=True)
    p.add_argument("--set", action="append", default=[],
                   help="one variant: SECTION.FIELD=VALUE[;SECTION.FIELD=VALUE...] (default: the run's own settings)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="append one JSON line per variant to this file")
    p.add_argument("--label", metavar="NAME:METHOD:TAG",
                   help="write cpu.py's data name, method and tag into the JSON lines, so that "
                        "they can be paired with cpu.py's rows by tag")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    parts = (args.label or "").split(":", 2)
    if args.label and (len(parts) != 3 or not all(parts)):
        p.error(f"--label wants NAME:METHOD:TAG, got {args.label!r}")
    label = dict(zip(("name", "method", "tag"), parts)) if args.label else {}
    try:
        model, cfg0 = load_model(args.run_dir, "cpu")
        summary = read_summary(args.run_dir)  # the training it had (steps and seconds of the row)
        trained = {"train_seconds": summary.get("seconds"), "train_steps": summary.get("steps")}
        split = load_split(args.data, cfg0.data, seed=cfg0.train.seed)
        print(f"run {args.run_dir} on {split.name}: {len(split.test)} test images, image size "
              f"{cfg0.data.image_size or 'native'}, profile {cfg0.profile}")
        print(f"{'variant':40} {'chosen scoring':34} {'restore':>7} {'image':>6} {'sum':>6} {'max':>6} "
              f"{'contr':>6} {'pixel':>6} {'AUPRO':>6}")
        for variant in args.set or [""]:
            sections: dict[str, dict] = {}
            for item in filter(None, variant.split(";")):
                key, eq, value = item.partition("=")
                section, _, name = key.strip().partition(".")
                if not eq or not name:
                    raise SsaeError(f"--set wants SECTION.FIELD=VALUE, got {item!r}")
                sections.setdefault(section, {})[name] = parse_value(value.strip())
            cfg = override(cfg0, **sections)
            cal, stats = calibrate_model(model, cfg, split, "cpu")
            res = evaluate_model(model, cfg, split, cal, stats, "cpu", data_spec=args.data, progress=False)
            sc = res["score"]
            chosen = (f"{sc['diff']} n {sc['n']} k {sc['k']} t {sc['t']}"
                      f"{(' |std|' if sc['two_sided'] else ' std') if sc['standardize'] else ''} {sc['reduce']}")
            f = lambda v: "   n/a" if v is None else f"{v:6.3f}"  # noqa: E731
            print(f"{variant or '(run settings)':40} {chosen:34} {f(res['restoration_pixel_auroc']):>7} "
                  f"{f(res['image_auroc'])} {f(res['image_auroc_sum'])} {f(res['image_auroc_max'])} "
                  f"{f(res['image_auroc_contrast'])} {f(res['pixel_auroc'])} {f(res['aupro'])}", flush=True)
            if args.json:
                with open(args.json, "a") as fh:
                    fh.write(json.dumps({"variant": variant, "run_dir": args.run_dir, **label, **res, **trained}) + "\n")
    except (SsaeError, ValueError) as e:  # ValueError: an unknown setting in --set
        print(f"recalibrate: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
