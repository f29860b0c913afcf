"""The LLM provider interface and what every implementation shares.

A provider is sync: the gRPC servicer runs it in a worker thread.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from services.common.errors import InvalidArgument

# OpenTelemetry GenAI semantic-convention attribute names.
GEN_AI_OPERATION = "gen_ai.operation.name"
GEN_AI_SYSTEM = "gen_ai.system"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
ERROR_TYPE = "error.type"


@dataclass(frozen=True)
class Prompt:
    """One request in both forms; a provider uses the form its model is good at.

    `messages` is the chat form ((role, content) pairs, roles "user"/"assistant",
    with `system` as the system message); `completion` is the same request as
    completion-style text. `stop` strings end the answer in either form: the text
    is cut before the first one and never contains it. `completion_stop` adds stop
    strings for the completion form only (a completion model runs on into the
    next block, e.g. after a blank line, where a chat model ends its turn).
    """

    system: str
    messages: tuple[tuple[str, str], ...]
    completion: str
    stop: tuple[str, ...] = ()
    completion_stop: tuple[str, ...] = ()


class LLMProvider(ABC):
    """Generates text for a Prompt. Implementations must be safe to call from threads."""

    @property
    @abstractmethod
    def model_name(self) -> str:
        """The model's name as reported in answers and spans."""

    @abstractmethod
    def complete(self, prompt: Prompt, max_tokens: int) -> str:
        """The whole generated text (greedy where the backend allows), cut at a stop string."""

    @abstractmethod
    def stream(self, prompt: Prompt, max_tokens: int) -> Iterator[str]:
        """Text deltas whose concatenation is what complete() gives for greedy decoding.

        Closing the iterator early stops generation.
        """


def check_max_tokens(max_tokens: int) -> None:
    """Raise InvalidArgument unless max_tokens is a positive number."""
    if max_tokens < 1:
        raise InvalidArgument(f"max_tokens must be at least 1, got {max_tokens}")


@contextmanager
def generation_span(
    operation: str, system: str, model: str, max_tokens: int, *, current: bool = True
) -> Iterator[Span]:
    """A GenAI client span around one generation; marks it failed on an exception.

    Use current=False inside generators: a generator may be resumed from another
    thread or context, where detaching an attached context would fail.
    """
    tracer = trace.get_tracer(__name__)
    span = tracer.start_span(
        f"{operation} {model}",
        kind=SpanKind.CLIENT,
        attributes={
            GEN_AI_OPERATION: operation,
            GEN_AI_SYSTEM: system,
            GEN_AI_REQUEST_MODEL: model,
            GEN_AI_REQUEST_MAX_TOKENS: max_tokens,
        },
    )
    try:
        if current:
            with trace.use_span(span, end_on_exit=False, record_exception=False):
                yield span
        else:
            yield span
    except Exception as exc:
        # The type only: messages from HTTP clients may echo parts of an API key.
        span.set_attribute(ERROR_TYPE, type(exc).__qualname__)
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        span.end()


class StopFilter:
    """Cuts a stream of text deltas before the first stop string.

    feed() returns what is safe to emit now; a tail that could be the start of a
    stop string is held back until the next delta (or flush()) decides it. Leading
    whitespace is dropped and never stops the stream: completion models often open
    with the very "\n\n" that ends their answer.
    """

    def __init__(self, stop: tuple[str, ...]) -> None:
        self._stop = tuple(s for s in stop if s)
        self._buffer = ""
        self._started = False
        self.stopped = False

    def feed(self, delta: str) -> str:
        if self.stopped:
            return ""
        if not self._started:
            delta = delta.lstrip()
            self._started = bool(delta)
        self._buffer += delta
        cut = min((i for i in (self._buffer.find(s) for s in self._stop) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            out, self._buffer = self._buffer[:cut], ""
            return out
        hold = self._held_tail()
        out = self._buffer[: len(self._buffer) - hold]
        self._buffer = self._buffer[len(out) :]
        return out

    def flush(self) -> str:
        """The held-back tail once the stream has ended without a stop string."""
        out, self._buffer = ("" if self.stopped else self._buffer), ""
        return out

    def _held_tail(self) -> int:
        """Length of the longest buffer suffix that is a proper prefix of a stop string."""
        longest = 0
        for stop in self._stop:
            for size in range(min(len(stop) - 1, len(self._buffer)), longest, -1):
                if self._buffer.endswith(stop[:size]):
                    longest = size
                    break
        return longest


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """text up to (not including) the earliest stop string."""
    stop_filter = StopFilter(stop)
    return stop_filter.feed(text) + stop_filter.flush()
