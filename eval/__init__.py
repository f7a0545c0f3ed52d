"""Metrics for the SMS suite: a registry of metrics (eval.registry), the runner (eval.run) and RAPSD
(eval.rapsd). Importing this package loads no model code."""
