"""Retrieval and answer evaluation: python -m mlops.evaluate_rag."""
