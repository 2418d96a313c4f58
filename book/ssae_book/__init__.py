"""The book's machinery: what the notebooks call to show results. The method never imports it.

- :mod:`ssae_book.models`: the trained reference models kept in ``models/`` (learning curves,
  recorded and re-evaluated metrics, galleries of the best and worst test images).
- :mod:`ssae_book.findings`: the chapter "What moves the numbers on real defects", its tables
  and generated prose read from the result rows kept in ``benchmarks/results/*.jsonl``.
"""
