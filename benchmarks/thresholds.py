"""Do the calibrated thresholds hold on images the calibration never saw?

For every packed model in ``models/`` whose data set is on this machine, the model's own
calibration (``calibration.json``, ``avgmap.npy``, ``stdmap.npy``) scores the test split and the
training images, and the table shows:

- ``good > thr``: the share of good test images whose image score exceeds ``image_threshold``
  (false alarms on unseen clean images; the calibration aims at about 1 in 100);
- ``train > thr``: the same share among the training images (the validation images excluded);
- ``bad > thr``: the share of defective test images above it (what the threshold still finds);
- ``mask area``: the median share of the image that the binary mask (map > ``threshold``)
  covers on the defective test images, beside the median share the true defect masks cover
  (in brackets), and on the good test images (``good mask``; about 0.1 % is the aim of
  ``score.threshold_quantile`` 0.999).

Where the good test images are tiles cut from a few larger photographs (the AITEX strips: file
stems ``<strip>_x<column>``), the row also says which strips the flagged good images come from
(``good_flagged_sources``): one irregular strip can account for most false alarms.

    python benchmarks/thresholds.py --json benchmarks/results/thresholds.json
    python benchmarks/thresholds.py --only aitex-fabric01 --merge --json benchmarks/results/thresholds.json

``--only`` measures the named reference folders of ``models/`` alone; ``--merge`` keeps the rows of
the other models already in the ``--json`` file and stamps each new row with its command and date.

Nothing is written into the model folders; the calibration is read as it is.
"""
from __future__ import annotations

import _checkout  # noqa: F401  (the ssae of this checkout, installed or not)

import argparse
import collections
import datetime as _dt
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch


def source(path) -> str:
    """The photograph a tile was cut from: the file stem without a trailing ``_x<column>``
    (AITEX tiles), else the stem itself."""
    return re.sub(r"_x\d+$", "", Path(path).stem)


def measure(folder: Path, data: str, device: str = "cpu") -> dict:
    """The false-alarm shares and mask areas of one packed model (see the module docstring)."""
    from ssae import data as D
    from ssae import scoring as S
    from ssae.evaluation import ground_truth, load_run
    from ssae.precision import INFERENCE

    model, cfg, split, cal, stats = load_run(folder, data, device)

    def maps_of(paths):
        images = split.images(paths, cfg.data.image_size)
        return S.calibrated_maps(S.diff_maps(model, images, cal["diff"], device), cal, stats)

    def score(m):
        return float(S.image_score(torch.from_numpy(m)[None], cal["reduce"]))

    items = split.test
    test_maps = maps_of([it.path for it in items])
    train_maps = maps_of(split.train)
    thr, img_thr = cal["threshold"], cal.get("image_threshold")
    good = [score(m) for it, m in zip(items, test_maps) if it.label == 0]
    good_sources = [source(it.path) for it in items if it.label == 0]
    flagged = collections.Counter(s for s, v in zip(good_sources, good) if img_thr is not None and v > img_thr)
    train = [score(m) for m in train_maps]
    bad = [i for i, it in enumerate(items) if it.label == 1]
    bad_scores = [score(test_maps[i]) for i in bad]
    masks = ground_truth(split, items, test_maps)
    predicted = [float((test_maps[i] > thr).mean()) for i in bad]
    on_good = [float((m > thr).mean()) for it, m in zip(items, test_maps) if it.label == 0]
    true = [float(masks[i].mean()) for i in bad] if masks is not None else []
    return {
        "threshold_method": cal.get("threshold_method", "validation quantile (same images)"),
        "threshold": thr, "image_threshold": img_thr, "reduce": cal["reduce"],
        "n_val_images": cal.get("n_val_images"),
        "n_good_test": len(good), "n_train": len(train), "n_defective": len(bad),
        "good_above": float(np.mean([s > img_thr for s in good])) if img_thr is not None and good else None,
        "train_above": float(np.mean([s > img_thr for s in train])) if img_thr is not None and train else None,
        "defective_above": (float(np.mean([s > img_thr for s in bad_scores])) if img_thr is not None and bad_scores
                            else None),
        "good_median_score": float(np.median(good)) if good else None,
        "train_median_score": float(np.median(train)) if train else None,
        "mask_area_predicted": float(np.median(predicted)) if predicted else None,
        "mask_area_true": float(np.median(true)) if true else None,
        "mask_area_good": float(np.median(on_good)) if on_good else None,
        "n_good_sources": len(set(good_sources)),
        "good_flagged_sources": {k: [n, good_sources.count(k)] for k, n in flagged.most_common()},
        "precision": INFERENCE,
    }


def main(argv=None) -> int:
    from ssae.errors import SsaeError
    from ssae.hardware import hardware
    from ssae_book import models as R
    from ssae.runs import write_json

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=str(R.MODELS), help="folder of packed models (default: models/)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", nargs="+", metavar="NAME", help="measure these reference folders only (e.g. aitex-fabric01)")
    p.add_argument("--json", help="write the rows to this JSON file")
    p.add_argument("--merge", action="store_true",
                   help="keep the other models' rows of the --json file; replace the rows measured now")
    args = p.parse_args(argv)
    if args.merge and not args.json:
        p.error("--merge needs --json")
    torch.set_num_threads(args.threads)
    rows = []
    print(f"{hardware('cpu')}, {_dt.date.today()}; command: python {' '.join(sys.argv)}")
    print(f"{'model':28} {'threshold method':34} {'good > thr':>10} {'train > thr':>11} {'bad > thr':>9} "
          f"{'mask area (true)':>17} {'good mask':>9}")
    pct = lambda v, d=1: "   n/a" if v is None else f"{100 * v:5.{d}f}%"  # noqa: E731
    try:
        refs = R.find(args.models)
        unknown = sorted(set(args.only or ()) - {ref.name for ref in refs})
        if unknown:
            raise SsaeError(f"--only: no reference model folder {unknown[0]} in {args.models}")
        for ref in refs:
            if args.only and ref.name not in args.only:
                continue
            data = ref.data_path()
            for kind, folder in ref.models.items():
                name = f"{ref.name}/{kind}"
                if data is None:
                    print(f"{name:28} data set {ref.data} is not on this machine: skipped")
                    continue
                row = {"model": name, "data": ref.data, **measure(folder, str(data))}
                rows.append(row)
                print(f"{name:28} {row['threshold_method'][:34]:34} {pct(row['good_above']):>10} "
                      f"{pct(row['train_above']):>11} {pct(row['defective_above']):>9} "
                      f"{pct(row['mask_area_predicted'], 2):>8} "
                      f"{'(' + pct(row['mask_area_true'], 2).strip() + ')':>9} {pct(row['mask_area_good'], 2):>9}", flush=True)
    except SsaeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        command, date = "python " + " ".join(sys.argv), _dt.datetime.now().isoformat(timespec="seconds")
        doc = {"command": command, "hardware": hardware("cpu"), "date": date, "torch": torch.__version__, "rows": rows}
        path = Path(args.json)
        if args.merge and path.is_file():
            doc = merged(json.loads(path.read_text()), rows, command, date)
        write_json(path, doc)
    return 0


def merged(doc: dict, rows: list[dict], command: str, date: str) -> dict:
    """``doc`` (an earlier output) with ``rows`` in place of its rows of the same models, each new
    row stamped with the ``command`` and ``date`` that measured it; rows sorted by model."""
    by_model = {r["model"]: r for r in doc.get("rows", [])}
    by_model.update({r["model"]: {**r, "command": command, "date": date} for r in rows})
    return {**doc, "rows": sorted(by_model.values(), key=lambda r: r["model"])}


if __name__ == "__main__":
    sys.exit(main())
