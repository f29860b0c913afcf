"""Blue/green reindex: build a new index generation through the worker, verify, switch."""
