"""Fine-tune the embedding model on a BEIR dataset's fit queries, select on dev."""
