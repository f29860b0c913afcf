"""OpenAI, or any OpenAI-compatible endpoint, through langchain-openai's ChatOpenAI."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import httpx2
import openai
from langchain_core.exceptions import ContextOverflowError
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from opentelemetry.trace import Span
from pydantic import SecretStr

from services.common.errors import (
    LLMMisconfigured,
    PromptTooLong,
    RagchatError,
    RateLimited,
    Unavailable,
)
from services.generation.providers.base import (
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    LLMProvider,
    Prompt,
    StopFilter,
    check_max_tokens,
    cut_at_stop,
    generation_span,
)

logger = logging.getLogger(__name__)

# The Chat Completions API accepts at most four stop sequences; the rest are
# applied here, on the client, like every stop string (some compatible servers
# ignore `stop` altogether).
_API_MAX_STOP = 4


class OpenAIChatProvider(LLMProvider):
    """Chat Completions with the chat form of a Prompt."""

    def __init__(
        self,
        model: str,
        api_key: str,
        base_url: str | None,
        temperature: float = 0.0,
        timeout_s: float = 60,
        max_retries: int = 2,
    ) -> None:
        if not api_key:
            raise ValueError("OpenAIChatProvider needs an API key")
        self._model = model
        self._llm = ChatOpenAI(
            model=model,
            api_key=SecretStr(api_key),
            base_url=base_url or None,
            temperature=temperature,
            timeout=timeout_s,
            max_retries=max_retries,
            use_responses_api=False,  # OpenAI-compatible servers speak Chat Completions
            http_client=httpx2.Client(event_hooks={"response": [_pass_rate_limits_on]}),
        )

    @property
    def model_name(self) -> str:
        return self._model

    def complete(self, prompt: Prompt, max_tokens: int) -> str:
        check_max_tokens(max_tokens)
        with generation_span("chat", "openai", self._model, max_tokens) as span:
            try:
                message = self._llm.invoke(
                    _messages(prompt), stop=_api_stop(prompt.stop), max_tokens=max_tokens
                )
            except openai.APIError as exc:
                raise _mapped(exc) from None
            _record_usage(span, message)
            return cut_at_stop(str(message.text), prompt.stop)

    def stream(self, prompt: Prompt, max_tokens: int) -> Iterator[str]:
        check_max_tokens(max_tokens)
        return self._stream(prompt, max_tokens)

    def _stream(self, prompt: Prompt, max_tokens: int) -> Iterator[str]:
        stop_filter = StopFilter(prompt.stop)
        with generation_span("chat", "openai", self._model, max_tokens, current=False) as span:
            chunks = self._llm.stream(
                _messages(prompt), stop=_api_stop(prompt.stop), max_tokens=max_tokens
            )
            try:
                for chunk in chunks:
                    _record_usage(span, chunk)
                    text = stop_filter.feed(str(chunk.text))
                    if text:
                        yield text
                    if stop_filter.stopped:
                        break
            except openai.APIError as exc:
                raise _mapped(exc) from None
            finally:
                chunks.close()
            tail = stop_filter.flush()
            if tail:
                yield tail


def _messages(prompt: Prompt) -> list[BaseMessage]:
    messages: list[BaseMessage] = [SystemMessage(prompt.system)] if prompt.system else []
    for role, content in prompt.messages:
        messages.append(AIMessage(content) if role == "assistant" else HumanMessage(content))
    return messages


def _api_stop(stop: Sequence[str]) -> list[str] | None:
    return [s for s in stop if s][:_API_MAX_STOP] or None


def _record_usage(span: Span, message: AIMessage | BaseMessage) -> None:
    usage = getattr(message, "usage_metadata", None)
    if usage:
        span.set_attribute(GEN_AI_USAGE_INPUT_TOKENS, usage.get("input_tokens", 0))
        span.set_attribute(GEN_AI_USAGE_OUTPUT_TOKENS, usage.get("output_tokens", 0))


def _pass_rate_limits_on(response: httpx2.Response) -> None:
    """An upstream 429 goes back to our caller at once (with its Retry-After) instead of
    being retried here while the request holds a generation slot; 5xx are still retried."""
    if response.status_code == 429:
        response.headers["x-should-retry"] = "false"


def _retry_after(exc: openai.APIStatusError) -> float | None:
    headers = exc.response.headers
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        if "retry-after" in headers:
            return max(0.0, float(headers["retry-after"]))
    except ValueError:  # an HTTP date: the caller's default applies
        pass
    return None


def _context_overflow(exc: openai.APIError) -> bool:
    # langchain-openai only recognises some wordings; OpenAI's code is the reliable sign.
    return exc.code == "context_length_exceeded" or "maximum context length" in exc.message


def _mapped(exc: openai.APIError) -> RagchatError:
    """A domain error whose message is safe to show: the client's own message may
    echo part of the API key, so it is neither kept nor logged."""
    status = getattr(exc, "status_code", None)
    logger.warning("LLM request failed: %s (HTTP status %s)", type(exc).__name__, status)
    if isinstance(exc, ContextOverflowError) or _context_overflow(exc):
        return PromptTooLong("The prompt is too long for the LLM's context window.")
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return LLMMisconfigured(
            f"The LLM provider rejected the configured API key (HTTP {status})."
        )
    if isinstance(exc, openai.NotFoundError):
        return LLMMisconfigured("The LLM provider does not serve the configured model.")
    if isinstance(exc, openai.RateLimitError):
        return RateLimited(
            "The LLM provider is rate limiting requests; try again later.", _retry_after(exc)
        )
    if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
        return LLMMisconfigured(f"The LLM provider refused the request (HTTP {status}).")
    if isinstance(exc, openai.APITimeoutError):
        return Unavailable("The LLM provider did not answer in time.")
    if isinstance(exc, openai.APIConnectionError):
        return Unavailable("Cannot connect to the LLM provider.")
    if isinstance(exc, openai.InternalServerError):
        return Unavailable(f"The LLM provider failed (HTTP {status}).")
    return RagchatError(f"The LLM provider refused the request (HTTP {status}).")
