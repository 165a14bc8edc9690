"""Experiments built from runs: policy comparisons at equal budget, transfer studies."""
