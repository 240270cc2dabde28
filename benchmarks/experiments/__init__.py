"""One module per reproduced comparison of the SAPE paper (issue 6); run them with ``benchmarks/run_experiments.py``."""
