"""Evaluation: full-catalogue metrics with confidence intervals, runs, reports, comparisons."""

from .evaluate import EvalResult, compare, evaluate, write_eval
from .export import export_trec
from .metrics import compute_metrics, paired_comparison

__all__ = ["EvalResult", "compare", "compute_metrics", "evaluate", "export_trec", "paired_comparison", "write_eval"]
