"""Request and response bodies of the OpenAI-compatible API (/v1), in OpenAI's wire format."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.gateway.schemas import JSON_INT, Citation, RetrievalOptions

Tokens = Annotated[int, Field(ge=1, le=4096, strict=False), JSON_INT]
One = Annotated[int, Field(ge=1, le=1, strict=False), JSON_INT]
Seed = Annotated[int, Field(ge=-(2**53), le=2**53, strict=False), JSON_INT]
TopLogprobs = Annotated[int, Field(ge=0, le=20, strict=False), JSON_INT]


class ContentPart(BaseModel):
    """One part of a message's content; only text parts are understood."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_call_id, ... are accepted
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text; raises ValueError for non-text content (images, audio)."""
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        if any(part.type != "text" for part in self.content):
            raise ValueError("only text content is supported")
        return "".join(part.text or "" for part in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(RetrievalOptions):
    """POST /v1/chat/completions. Sampling parameters are accepted and ignored (answers
    are greedy); the retrieval options and session_id are ragchat's extra body fields."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(max_length=256)
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: Tokens | None = None
    max_completion_tokens: Tokens | None = None
    n: One | None = Field(default=None, description="only 1 is supported")
    session_id: str | None = Field(
        default=None, description="continue this stored session (its history replaces messages')"
    )
    # Accepted for compatibility, not used.
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: Seed | None = None
    user: str | None = None
    stop: str | list[str] | None = None
    logprobs: bool | None = None
    top_logprobs: TopLogprobs | None = None
    logit_bias: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    service_tier: str | None = None
    parallel_tool_calls: bool | None = None
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=0)
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None


class ChatCompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: ChatCompletionMessage
    finish_reason: Literal["stop", "length"] = "stop"
    logprobs: None = None


class Usage(BaseModel):
    """Token counts; approximate (see README), as the generation service reports none."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    citations: list[Citation] = Field(description="what [n] in the answer points at (n from 1)")
    session_id: str | None = Field(default=None, description="set when one was continued")
    system_fingerprint: str | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "ragchat"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class EmbeddingRequest(BaseModel):
    """POST /v1/embeddings."""

    model_config = ConfigDict(extra="forbid", strict=True)
    model: str = Field(max_length=256)
    input: str | list[str] = Field(description="a text or up to 256 texts (token ids: no)")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Tokens | None = None
    user: str | None = None


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: EmbeddingUsage
