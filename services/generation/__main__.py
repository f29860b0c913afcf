"""python -m services.generation: the answer-writing gRPC service."""

from __future__ import annotations

import asyncio

from services.common.grpc_server import serve_forever
from services.common.runner import run_service
from services.generation import servicer
from services.generation.answering import Answerer
from services.generation.config import DEFAULT_PORT, GenerationSettings
from services.generation.providers.base import Prompt
from services.generation.providers.factory import provider_from_settings
from services.generation.rewrite import QueryRewriter


async def _serve(settings: GenerationSettings) -> None:
    provider = provider_from_settings(settings)
    answerer = Answerer(provider, max_context_chunks=settings.max_context_chunks,
                        min_support=settings.min_answer_support)
    rewriter = QueryRewriter(provider if settings.rewrite_with_llm() else None)
    if settings.llm_provider == "local":
        # Load the weights before reporting SERVING, not on the first user's question.
        await asyncio.to_thread(provider.complete, _WARMUP, 1)
    await serve_forever(
        settings,
        DEFAULT_PORT,
        lambda server: servicer.register(server, answerer, rewriter, settings.max_tokens),
    )


_WARMUP = Prompt(system="", messages=(("user", "Hello"),), completion="Hello")


def main() -> None:
    run_service("generation", GenerationSettings, _serve)


if __name__ == "__main__":
    main()
