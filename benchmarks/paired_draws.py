"""Compare two methods over paired draws of ``benchmarks/cpu.py``: is the method ahead of its reference?

One *draw* is one seed: both methods trained side by side with the same seed, budget and
threads, and written by ``cpu.py --json`` with the same ``--tag`` (``sN``). A single draw says
little on two cores (the grid look-alike moved by 0.1 image AUROC between seeds, section 14 of
the findings chapter), so this script pairs the rows of one data set by tag and prints, per
metric:

- the mean and standard deviation of each method over the draws;
- the paired difference (first method minus second), its 95 % confidence interval (Student t
  on the differences), the paired t-test p-value (``scipy.stats.ttest_rel``), the
  Wilcoxon signed-rank p-value (``scipy.stats.wilcoxon``: no normality assumed, exact for few
  draws without ties) and how many
  draws the first method wins;
- for a deterministic reference (``--reference blur``: no training, the same in every draw),
  how far each method's mean lies above it and in how many draws it is above it;

and, per defect type, both methods' mean image and pixel AUROC and the first method's wins. The
table of draws shows each model's restoration check ("restore", pixel AUROC on validation
images corrupted as in training; below 0.75 the model has not learned to restore).

    python benchmarks/paired_draws.py benchmarks/results/grid_draws.jsonl --data grid

A setting can be compared with the default it changes in the same way: tag its runs ``sN_V``
and pass ``--variant V --methods ssae_V,ssae``.

``--retry V`` applies a rule that needs no test labels: a row tagged ``sN_V`` (a retraining of
draw ``sN``, e.g. with other initial weights, ``train.init_seed``) takes the place of its
method's row in draw ``sN`` when that row failed the restoration check (below 0.75, the
library's ``RESTORATION_MIN``), and is left out otherwise. The table marks retried draws.

All p-values are two-sided; Holm's adjustment for the three metrics is printed beside them. Rows of other data sets,
methods without a partner in the same draw, and tags outside ``--tags`` are left out (counted).
"""
from __future__ import annotations

import _checkout  # noqa: F401  (the ssae of this checkout, for --plot and --retry)

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats

METRICS = ("image_auroc", "pixel_auroc", "aupro")


def read_rows(paths, data, alias=None, variants=(), retries=()):
    """Rows of data set ``data`` from JSON-lines files, keyed by (tag, method).

    ``alias`` renames tags (older runs were tagged ``_m20`` for seed 0). A row whose tag ends
    in ``_V`` for a ``V`` in ``variants`` is a variant of its method in draw ``tag``: it is
    read as method ``METHOD_V`` with the suffix dropped from its tag (``s7_wu0.1`` of ``ssae``
    becomes ``ssae_wu0.1`` in draw ``s7``), so that a setting can be paired with the default
    it changes. A (tag, method) seen twice is an error: the pairing would be ambiguous.
    A row tagged ``sN_R`` for an ``R`` in ``retries`` replaces its method's row of draw ``sN``
    if that row's restoration check is below ``ssae.evaluation.RESTORATION_MIN`` (it gets ``retried = R``)
    and is dropped otherwise; the first listed retry that applies is used.
    """
    alias = alias or {}
    rows: dict[tuple[str, str], dict] = {}
    retried: dict[tuple[str, str, str], dict] = {}
    for path in paths:
        path = Path(path)
        try:
            lines = path.read_text().splitlines()
        except OSError as e:
            raise SystemExit(f"error: cannot read {path}: {e.strerror}") from None
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise SystemExit(f"error: {path}:{i} is not a JSON line") from None
            if row.get("name") != data:
                continue
            tag = alias.get(row.get("tag", ""), row.get("tag", ""))
            method = row.get("method")
            retry = next((r for r in retries if tag.endswith("_" + r)), None)
            if retry is not None:
                retried[(tag[: -len(retry) - 1], method, retry)] = row
                continue
            for v in variants:
                if tag.endswith("_" + v):
                    tag, method = tag[: -len(v) - 1], f"{method}_{v}"
                    break
            key = (tag, method)
            if key in rows:
                raise SystemExit(f"error: {path}:{i}: a second row for data {data!r}, method "
                                 f"{key[1]!r}, tag {tag!r}; keep one row per draw")
            rows[key] = row
    if not retries:
        return rows
    from ssae.evaluation import RESTORATION_MIN  # only here: it imports torch

    for (tag, method), row in list(rows.items()):
        check = row.get("restoration_pixel_auroc")
        if check is None or check >= RESTORATION_MIN:
            continue
        for r in retries:
            if (tag, method, r) in retried:
                rows[(tag, method)] = {**retried[(tag, method, r)], "retried": r}
                break
    return rows


def paired_summary(a, b):
    """Statistics of paired values ``a`` (method) and ``b`` (reference) over the same draws."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = a - b
    n = len(d)
    sd = d.std(ddof=1) if n > 1 else float("nan")
    if n > 1 and sd > 0:
        lo, hi = stats.t.interval(0.95, n - 1, loc=d.mean(), scale=sd / np.sqrt(n))
        p_t = float(stats.ttest_rel(a, b).pvalue)
    else:
        lo = hi = p_t = float("nan")
    p_w = float(stats.wilcoxon(a, b).pvalue) if n > 1 and np.any(d != 0) else float("nan")
    return {"n": n, "mean_a": float(a.mean()), "sd_a": float(a.std(ddof=1)) if n > 1 else float("nan"),
            "mean_b": float(b.mean()), "sd_b": float(b.std(ddof=1)) if n > 1 else float("nan"),
            "diff": float(d.mean()), "ci95": [float(lo), float(hi)], "p_ttest": p_t, "p_wilcoxon": p_w,
            "wins": int((d > 0).sum())}


def holm(pvalues):
    """Holm's step-down adjustment of p-values for testing several metrics at once."""
    p = np.asarray(pvalues, float)
    order = np.argsort(np.where(np.isnan(p), np.inf, p))
    m, out, running = int(np.sum(~np.isnan(p))), np.full(len(p), np.nan), 0.0
    for rank, i in enumerate(order):
        if np.isnan(p[i]):
            continue
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return [float(v) for v in out]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rows", nargs="+", help="JSON-lines files written by benchmarks/cpu.py --json")
    p.add_argument("--data", required=True, help="the data set's name in the rows (cpu.py --data NAME=PATH)")
    p.add_argument("--methods", default="ssae,plain", help="the two paired methods, first minus second")
    p.add_argument("--reference", default="blur", help="a method without training, compared by its mean ('' for none)")
    p.add_argument("--tags", help="comma-separated draws to use (default: every tag both methods have)")
    p.add_argument("--alias", action="append", default=[], help="OLD=NEW: rename a tag (e.g. _m20=s0)")
    p.add_argument("--variant", action="append", default=[],
                   help="V: rows tagged sN_V are method METHOD_V in draw sN (e.g. --variant wu0.1 --methods ssae_wu0.1,ssae)")
    p.add_argument("--retry", action="append", default=[],
                   help="R: a row tagged sN_R replaces its method's row of draw sN when that failed the "
                        "restoration check (< 0.75)")
    p.add_argument("--json", help="append the summary as one JSON line to this file")
    p.add_argument("--plot", help="write a figure (PNG): one line per draw and metric, the blur as a dashed line")
    args = p.parse_args(argv)

    alias = dict(a.split("=", 1) for a in args.alias)
    first, second = args.methods.split(",")
    rows = read_rows(args.rows, args.data, alias, args.variant, args.retry)
    tags = sorted({t for t, m in rows if m == first} & {t for t, m in rows if m == second})
    if args.tags:
        wanted = args.tags.split(",")
        missing = [t for t in wanted if t not in tags]
        if missing:
            raise SystemExit(f"error: no {first}/{second} pair for tag(s) {', '.join(missing)} of {args.data!r}")
        tags = wanted
    unpaired = sum(1 for t, m in rows if m in (first, second) and t not in tags)
    if len(tags) < 2:
        raise SystemExit(f"error: {len(tags)} paired draw(s) of {first} and {second} on {args.data!r} in "
                         f"{', '.join(args.rows)}; at least 2 are needed")

    hw = sorted({rows[(t, m)].get("hardware", "?") for t in tags for m in (first, second)})
    print(f"data {args.data}: {len(tags)} paired draws of {first} and {second} ({unpaired} unpaired rows left out)")
    print("hardware: " + "; ".join(hw))
    prof = sorted({(rows[(t, first)].get("profile"), rows[(t, first)].get("image_size"),
                    round(rows[(t, first)].get("train_seconds", 0) / 60)) for t in tags})
    print("profile, image size, minutes: " + "; ".join(f"{a}, {b} px, {c}" for a, b, c in prof))
    head = " / ".join(m.replace("_auroc", "") for m in METRICS)
    print(f"\n{'draw':>6} {'steps':>11}  {first + ' ' + head:>26}  {second + ' ' + head:>26}  restore")
    for t in tags:
        a, b = rows[(t, first)], rows[(t, second)]
        va = " / ".join(f"{a[m]:.3f}" for m in METRICS)
        vb = " / ".join(f"{b[m]:.3f}" for m in METRICS)
        rest = " / ".join("  - " if r.get("restoration_pixel_auroc") is None else f"{r['restoration_pixel_auroc']:.2f}"
                          for r in (a, b))
        mark = "  " + ", ".join(f"{m} retried ({r['retried']})" for m, r in ((first, a), (second, b))
                                 if r.get("retried")) if a.get("retried") or b.get("retried") else ""
        print(f"{t:>6} {a.get('train_steps', '?'):>5}/{b.get('train_steps', '?'):<5}  {va:>26}  {vb:>26}  {rest}{mark}")

    ref_rows = [r for (t, m), r in rows.items() if m == args.reference] if args.reference else []
    summary = {"data": args.data, "methods": [first, second], "tags": tags, "metrics": {},
               "retried": {m: [t for t in tags if rows[(t, m)].get("retried")] for m in (first, second)}}
    print(f"\n{'metric':12} {first:>13} {second:>13} {'difference':>11} {'95% CI':>17} {'p (t)':>7} "
          f"{'p (Wilc.)':>9} {'wins':>6}   Holm (t / Wilc.)")
    for m in METRICS:
        summary["metrics"][m] = paired_summary([rows[(t, first)][m] for t in tags],
                                               [rows[(t, second)][m] for t in tags])
    holm_t = holm([summary["metrics"][m]["p_ttest"] for m in METRICS])
    holm_w = holm([summary["metrics"][m]["p_wilcoxon"] for m in METRICS])
    for m, ht, hw_ in zip(METRICS, holm_t, holm_w):
        s = summary["metrics"][m]
        s["p_ttest_holm"], s["p_wilcoxon_holm"] = ht, hw_
        print(f"{m:12} {s['mean_a']:.3f}±{s['sd_a']:.3f} {s['mean_b']:.3f}±{s['sd_b']:.3f} {s['diff']:+11.3f} "
              f"[{s['ci95'][0]:+.3f}, {s['ci95'][1]:+.3f}] {s['p_ttest']:7.3f} {s['p_wilcoxon']:9.3f} "
              f"{s['wins']:>3}/{s['n']}   {ht:.3f} / {hw_:.3f}")
    if ref_rows:
        print(f"\nreference {args.reference} (no training; mean of {len(ref_rows)} row(s)):")
        for m in METRICS:
            r = float(np.mean([x[m] for x in ref_rows]))
            above = {meth: int(sum(rows[(t, meth)][m] > r for t in tags)) for meth in (first, second)}
            summary["metrics"][m]["reference"] = {"method": args.reference, "value": r, "draws_above": above}
            print(f"{m:12} {r:.3f}   " + "   ".join(
                f"{meth} {summary['metrics'][m]['mean_a' if meth == first else 'mean_b'] - r:+.3f} "
                f"(above in {above[meth]}/{len(tags)})" for meth in (first, second)))
    types = sorted(set.intersection(*(set(rows[(t, m)].get("per_defect") or {}) for t in tags
                                      for m in (first, second))))
    if types:
        print(f"\nper defect type (that type's images and the good ones), mean over the draws and wins of {first}:")
        print(f"{'type':22} {'image AUROC':>23} {'pixel AUROC':>23}")
        summary["per_defect"] = {}
        for d in types:
            cells, summary["per_defect"][d] = [], {}
            for key in ("per_defect", "per_defect_pixel"):
                a = [(rows[(t, first)].get(key) or {}).get(d) for t in tags]
                b = [(rows[(t, second)].get(key) or {}).get(d) for t in tags]
                if None in a or None in b:
                    cells.append(f"{'-':>23}")
                    continue
                wins = int(sum(x > y for x, y in zip(a, b)))
                summary["per_defect"][d][key] = {"mean_a": float(np.mean(a)), "mean_b": float(np.mean(b)), "wins": wins}
                cells.append(f"{np.mean(a):.3f} / {np.mean(b):.3f} ({wins:>2}/{len(tags)})")
            print(f"{d:22} {cells[0]:>23} {cells[1]:>23}")
    print("\np-values are two-sided; the Holm columns adjust them for testing three metrics at once.")
    if args.plot:
        from ssae.plots import paired_draws, save_figure

        r0 = rows[(tags[0], first)]
        label = (f"{r0.get('dataset', args.data)}, {r0.get('image_size')} px, {r0.get('profile')} profile, "
                 f"{round(r0.get('train_seconds', 0) / 60)} min, {'; '.join(hw)}")
        values = {m: ([rows[(t, first)][m] for t in tags], [rows[(t, second)][m] for t in tags]) for m in METRICS}
        ref = {m: s["reference"]["value"] for m, s in summary["metrics"].items() if "reference" in s}
        out = save_figure(paired_draws(values, label, ref or None, names=(first, second)), args.plot)
        print(f"wrote {out}")
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
