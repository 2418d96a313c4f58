"""Data sets that ship with ssae: :mod:`ssae.datasets.embedded`, generated look-alike textures
with defects and masks (not MVTec AD), so that everything runs without downloads."""
