"""ssae: Self-Supervised training with AutoEncoders for visual anomaly detection.

A readable implementation of Bauer, Nakajima, Mueller, "Self-Supervised Training with
Autoencoders for Visual Anomaly Detection". One module per concept of the paper:

- :mod:`ssae.config`      every setting, marked as the paper's or ours
- :mod:`ssae.data`        MVTec AD layout, Magnetic Tile Defects layout, the embedded data
- :mod:`ssae.embedded`    a generated texture data set with realistic defects
- :mod:`ssae.corruption`  Section 3.2 / Figure 5: corrupted training inputs
- :mod:`ssae.model`       Section 3.3 / Table 1: the autoencoder with stacked dilated convolutions
- :mod:`ssae.objectives`  Section 3.1: objectives (1) and (4)
- :mod:`ssae.training`    Adam, progressive crops, checkpoints, resume
- :mod:`ssae.scoring`     eqs. (2), (3), (13), (14): Diff, anomap, avgmap, scores
- :mod:`ssae.metrics`     image AUROC, pixel AUROC, AUPRO
- :mod:`ssae.theory`      Section 3.4 and supplements: Propositions 1-2, Theorems 2-3, Figure 9
- :mod:`ssae.plots`       figures
"""

__version__ = "0.1.0"
