"""Part (h)'s peers: one script per library (run in ``benchmarks/.peers-venv``), what they share
(``solve_tracker.py``), their pins (``constraints.txt``) and the venv's builder (``build_venv.py``).

A regular package, so that ``from peers import build_venv`` in ``measure_peers.py`` cannot pick up
some other ``peers`` module later on ``sys.path``.
"""
