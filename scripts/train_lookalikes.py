"""Train and pack the generated look-alikes' models that the book evaluates instead of training.

    python scripts/train_lookalikes.py [CATEGORY ...]   # default: all five (carpet grid leather tile wood)

Each model is trained exactly as ``ssae-book --profile cpu`` would train it (the ``cpu`` profile,
the build's default budget per data set, seed 0: :func:`ssae_book.book.run_config`) into
``runs/lookalikes/<slug>``, then packed (:func:`ssae.release.pack`, float16 weights) into
``book/lookalikes/<slug>/ssae``. For the look-alikes the build compares with objective (4) and
cut-out (``DEFAULT_COMPARE``: wood) the two comparison models are trained as the build trains them
(half the budget each) and packed beside it as ``objective4`` and ``cutout``. A build whose
settings differ trains its own models.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from ssae.release import pack
from ssae_book.book import EMBEDDED, LOOKALIKES, REPO, VARIANTS, dataset, kept_lookalike, train_category
from ssae_book.build import DEFAULT_COMPARE, DEFAULT_MINUTES

PROFILE, SEED = "cpu", 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("categories", nargs="*", default=list(EMBEDDED), metavar="CATEGORY")
    p.add_argument("--runs", default=str(REPO / "runs" / "lookalikes"), help="where the run folders go")
    p.add_argument("--out", default=str(LOOKALIKES), help="where the packed models go")
    args = p.parse_args(argv)
    unknown = sorted(set(args.categories) - set(EMBEDDED))
    if unknown:
        p.error(f"unknown look-alike {unknown[0]!r}; choose from {', '.join(EMBEDDED)}")
    minutes = DEFAULT_MINUTES[PROFILE]
    for category in args.categories:
        data = f"embedded:{category}"
        slug = dataset(data).slug
        models = [("ssae", minutes, {})]
        if data in DEFAULT_COMPARE:
            models += [(name, minutes / 2, kw) for name, kw in VARIANTS.items()]
        for name, budget, kw in models:
            run_dir = Path(args.runs) / slug / name
            shutil.rmtree(run_dir, ignore_errors=True)
            run = train_category(data, PROFILE, run_dir, seed=SEED, minutes=budget, **kw)
            out = Path(args.out) / slug / name
            shutil.rmtree(out, ignore_errors=True)
            pack(run_dir, out, data, draws=2, samples=False)  # generated data: drawn again at will
            assert kept_lookalike(data, PROFILE, budget, SEED, args.out, name, **kw) == out, f"{out}: settings differ"
            print(f"{slug}/{name}: {run['result']['steps']} steps in {run['result']['seconds']:.0f} s -> {out}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
