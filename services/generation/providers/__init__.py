"""LLM providers: one interface (base.py), real implementations, one factory."""
