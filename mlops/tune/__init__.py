"""Optuna tuning of the serving configuration (python -m mlops.tune)."""
