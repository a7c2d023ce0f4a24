"""Answer offline with the small bundled GGUF model through llama.cpp, one generation at a time."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

from chatbot.errors import ChatError
from chatbot.local_model import find_model_file, model_display_name
from chatbot.prompt import MESSAGE_OVERHEAD
from chatbot.providers.base import WAIT_MESSAGE as WAIT_MESSAGE
from chatbot.providers.base import ChatRequest, Outcome, Reply, ReplyStream

# Generation defaults for SmolLM2-135M-Instruct, chosen by measurement: see the
# "Local model" section of docs/benchmarks.md (bench/local_settings.py reproduces it).
DEFAULT_MAX_TOKENS = 512
DEFAULT_TEMPERATURE = 0.2
DEFAULT_TOP_P = 0.9
DEFAULT_REPEAT_PENALTY = 1.1

# The model takes 8192, but a CPU reads prompts at only ~60 tokens/s a core here, so a fuller
# window would mostly buy long waits before the first token.
CONTEXT_TOKENS = 2048
MIN_REPLY_TOKENS = 16  # less room than this for the reply means the prompt is too long
WAIT_TIMEOUT = 300.0  # seconds to wait for another session's reply before giving up


class LocalProvider:
    """A llama.cpp model in this process; a lock makes sessions take turns, as it is not thread-safe."""

    backend = "local"
    reply_tokens = DEFAULT_MAX_TOKENS  # room the prompt builder leaves for the reply

    def __init__(
        self,
        llama: Any,
        model_name: str,
        *,
        context_tokens: int = CONTEXT_TOKENS,
        wait_timeout: float = WAIT_TIMEOUT,
    ):
        self._llama = llama
        self.model_name = model_name
        self.context_tokens = context_tokens
        self.wait_timeout = wait_timeout
        self.top_p = DEFAULT_TOP_P
        self.repeat_penalty = DEFAULT_REPEAT_PENALTY
        self._lock = threading.Lock()
        self._formatter = _chat_formatter(llama)

    @classmethod
    def load(
        cls, path: str | Path, n_ctx: int = CONTEXT_TOKENS, n_threads: int | None = None
    ) -> LocalProvider:
        """Load a GGUF file; raises ImportError without llama-cpp-python, ValueError on a bad file."""
        from llama_cpp import Llama

        path = Path(path)
        threads = n_threads or default_threads()
        llama = Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,  # the prompt too: all cores stall the same way under load
            verbose=False,
        )
        return cls(llama, model_display_name(path), context_tokens=n_ctx)

    @property
    def busy(self) -> bool:
        """True while a reply is being generated: a new request would wait for it."""
        return self._lock.locked()

    def list_models(self) -> list[str]:
        return [self.model_name]

    def count_tokens(self, text: str) -> int:
        """Tokens in text by the model's own tokenizer (read-only, so no lock is needed)."""
        if not text:
            return 0
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def count_prompt_tokens(self, messages: Sequence[dict]) -> int:
        """Tokens of the prompt exactly as the chat template renders it, markers included."""
        if self._formatter is None:
            return sum(self.count_tokens(m["content"]) + MESSAGE_OVERHEAD for m in messages) + 1
        prompt = self._formatter(messages=list(messages)).prompt
        return len(self._llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))

    def execute(
        self,
        request: ChatRequest,
        *,
        on_wait: Callable[[], None] | None = None,
        seed: int | None = None,
    ) -> Reply:
        """Start nothing yet: the model runs while the Reply is iterated.

        If another session is generating, on_wait() is called once (from the iterating
        thread, before any delta) and the stream then waits its turn; show WAIT_MESSAGE.
        """
        return Reply(self._stream(request, on_wait, seed))

    def _stream(
        self, request: ChatRequest, on_wait: Callable[[], None] | None, seed: int | None
    ) -> ReplyStream:
        messages = [{"role": m["role"], "content": m["content"]} for m in request.messages]
        prompt_tokens = self.count_prompt_tokens(messages)
        max_tokens = self._reply_room(prompt_tokens, request.max_tokens or DEFAULT_MAX_TOKENS)
        if not self._lock.acquire(blocking=False):
            if on_wait is not None:
                on_wait()
            if not self._lock.acquire(timeout=self.wait_timeout):
                raise ChatError("timeout")
        try:
            text, finish_reason = yield from self._generate(messages, request, max_tokens, seed)
        finally:
            self._lock.release()
        completion_tokens = self.count_tokens(text)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        return Outcome(finish_reason=finish_reason, usage=usage, model=self.model_name)

    def _reply_room(self, prompt_tokens: int, max_tokens: int) -> int:
        """max_tokens shrunk to what the context has left; ChatError if that is too little."""
        room = self.context_tokens - prompt_tokens
        if room < MIN_REPLY_TOKENS:
            detail = f"{prompt_tokens} of {self.context_tokens} tokens"
            raise ChatError("context_full", detail=detail)
        return min(max_tokens, room)

    def _generate(
        self, messages: list[dict], request: ChatRequest, max_tokens: int, seed: int | None
    ) -> Generator[str, None, tuple[str, str | None]]:
        """Stream deltas from llama.cpp; return the whole text and the finish reason."""
        temperature = DEFAULT_TEMPERATURE if request.temperature is None else request.temperature
        text = ""
        finish_reason = None
        try:
            chunks = self._llama.create_chat_completion(
                messages=messages,
                stream=True,
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=self.top_p,
                repeat_penalty=self.repeat_penalty,
                seed=seed,
            )
            try:
                for chunk in chunks:
                    choice = chunk["choices"][0]
                    delta = choice["delta"].get("content")
                    if delta:
                        text += delta
                        yield delta
                    finish_reason = choice.get("finish_reason") or finish_reason
            finally:
                chunks.close()  # on an early stop too: llama.cpp's generator frees its batch
        except ValueError as error:  # llama-cpp-python reports an over-long prompt this way
            if "context window" in str(error):
                raise ChatError("context_full", detail=str(error)) from error
            raise ChatError("unexpected", detail=str(error)) from error
        except RuntimeError as error:  # a failed llama_decode
            raise ChatError("unexpected", detail=str(error)) from error
        return text, finish_reason


def default_threads() -> int:
    """Half the CPUs: threads on every core stall whenever Streamlit or anything else needs one."""
    # 5-15 instead of 40+ tokens/s on 2 busy cores: see docs/benchmarks.md, "Local model".
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max((cpus or 1) // 2, 1)


def load_local_provider(path: str | Path | None = None, n_threads: int | None = None) -> LocalProvider:
    """The provider for the bundled (or CHATBOT_LOCAL_MODEL_PATH) model, or ChatError("no_backend")."""
    model_file = find_model_file(str(path) if path is not None else None)
    if model_file is None:
        raise ChatError("no_backend")
    try:
        return LocalProvider.load(model_file, n_threads=n_threads)
    except ImportError as error:  # llama-cpp-python is not installed
        raise ChatError("no_backend") from error
    except ValueError as error:  # not a model llama.cpp can load
        detail = f"cannot load the local model {model_file.name}: {error}"
        raise ChatError("unexpected", detail=detail) from error


def _chat_formatter(llama: Any) -> Callable[..., Any] | None:
    """The GGUF's own chat template, rendered the way create_chat_completion renders it."""
    template = getattr(llama, "metadata", {}).get("tokenizer.chat_template")
    if not template:
        return None
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    def token_text(token: int) -> str:
        return llama.detokenize([token], special=True).decode("utf-8") if token >= 0 else ""

    return Jinja2ChatFormatter(
        template=template,
        eos_token=token_text(llama.token_eos()),
        bos_token=token_text(llama.token_bos()),
    )
