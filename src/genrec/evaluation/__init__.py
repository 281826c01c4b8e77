"""Evaluation: full-catalogue metrics with confidence intervals, runs, reports, comparisons."""

from .evaluate import EvalResult, compare, evaluate, write_eval
from .metrics import compute_metrics, paired_comparison

__all__ = ["EvalResult", "compare", "compute_metrics", "evaluate", "paired_comparison", "write_eval"]
