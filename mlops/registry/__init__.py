"""The serving-configuration registry: MLflow model `ragchat-rag`, aliases champion and
challenger. Each version's artifact is one config.json (see `serving_payload`), which
the services read at start-up (services.common.serving_config)."""
