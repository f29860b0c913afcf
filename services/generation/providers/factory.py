"""The one place that picks an LLM provider from configuration."""

from __future__ import annotations

import logging

from services.generation.config import GenerationSettings
from services.generation.providers.base import LLMProvider

logger = logging.getLogger(__name__)

PROVIDER_KINDS = ("local", "openai")


def build_provider(
    kind: str = "local",
    *,
    openai_model: str = "gpt-4o-mini",
    openai_api_key: str = "",
    openai_base_url: str | None = None,
    local_model_path: str | None = None,
    local_runtime: str = "auto",
) -> LLMProvider:
    """A provider of the given kind ("local" or "openai"); raises ValueError on bad settings.

    Each implementation is imported only when chosen, so a local deployment
    never loads the OpenAI client and vice versa.
    """
    if kind == "openai":
        if not openai_api_key:
            raise ValueError(
                "The openai LLM provider needs an API key: set RAGCHAT_OPENAI_API_KEY "
                "(or choose RAGCHAT_LLM_PROVIDER=local)."
            )
        from services.generation.providers.openai_chat import OpenAIChatProvider

        logger.info("LLM provider: openai-compatible, model %s", openai_model)
        return OpenAIChatProvider(openai_model, openai_api_key, openai_base_url or None)
    if kind == "local":
        from services.generation.providers.local import LocalGGUFProvider

        provider = LocalGGUFProvider(local_model_path or None, runtime=local_runtime)
        logger.info("LLM provider: local %s with %s", provider.model_name, provider.runtime)
        return provider
    raise ValueError(f"Unknown LLM provider {kind!r}; expected one of {PROVIDER_KINDS}")


def provider_from_settings(settings: GenerationSettings) -> LLMProvider:
    """The provider the generation settings (RAGCHAT_LLM_* etc.) describe."""
    return build_provider(
        settings.llm_provider,
        openai_model=settings.openai_model,
        openai_api_key=settings.api_key(),
        openai_base_url=settings.openai_base_url or None,
        local_model_path=settings.local_model_path or None,
        local_runtime=settings.local_runtime,
    )
