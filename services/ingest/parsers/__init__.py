"""One parser per upload kind; services.ingest.parsing chooses between them."""
