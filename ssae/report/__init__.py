"""The book's machinery: what the notebooks call to show results. The method never imports it.

- :mod:`ssae.report.models`: the trained reference models kept in ``models/`` (learning curves,
  recorded and re-evaluated metrics, galleries of the best and worst test images).
"""
