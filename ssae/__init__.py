"""ssae: Self-Supervised training with AutoEncoders for visual anomaly detection.

A readable implementation of Bauer, Nakajima, Mueller, "Self-Supervised Training with
Autoencoders for Visual Anomaly Detection". One module per concept of the paper:

- :mod:`ssae.config`       every setting, marked as the paper's or ours
- :mod:`ssae.data`         MVTec AD layout, Magnetic Tile Defects layout, the embedded data
- :mod:`ssae.corruption`   Section 3.2 / Figure 5: corrupted training inputs
- :mod:`ssae.model`        Section 3.3 / Table 1: the autoencoder with stacked dilated convolutions
- :mod:`ssae.objectives`   Section 3.1: objectives (1) and (4)
- :mod:`ssae.training`     Adam, progressive crops, checkpoints, resume
- :mod:`ssae.pipeline`     the order of ``ssae train``: training (with its learning curve), then calibration
- :mod:`ssae.runs`         the run folder: config, checkpoints, summaries, calibration files
- :mod:`ssae.scoring`      eqs. (2), (3), (13), (14): Diff, anomap, avgmap, scores
- :mod:`ssae.calibration`  the scoring chosen on validation images; the restoration check
- :mod:`ssae.evaluation`   image AUROC, pixel AUROC, AUPRO of a run on a test split
- :mod:`ssae.metrics`      AUROC and AUPRO
- :mod:`ssae.detector`     ``Detector.load(model).score(images)``: map, score, verdict and mask per image
- :mod:`ssae.predict`      the same as files (overlays, masks, scores.csv); :mod:`ssae.export` as ONNX
- :mod:`ssae.theory`       Section 3.4 and supplements: Propositions 1-2, Theorems 2-3, Figure 9
- :mod:`ssae.datasets`     generated look-alike textures (not MVTec AD)

The book's machinery (notebook helpers, tables, plots, the runner) is :mod:`ssae_book`,
which no module of the method imports.
"""

__version__ = "0.1.0"


def __getattr__(name):
    """``from ssae import Detector`` without importing torch for every ``import ssae``."""
    if name == "Detector":
        from .detector import Detector
        return Detector
    raise AttributeError(f"module 'ssae' has no attribute {name!r}")
