"""Model lifecycle tools: indexing, evaluation, tuning."""
