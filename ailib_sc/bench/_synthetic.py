"""Synthetic requests: prompts and output lengths drawn from a distribution.

Theory of operation: :class:`SyntheticRequests` is an endless, reproducible
iterable. Each iteration starts a :class:`random.Random` from the seed, so two
iterations (two benchmark points) send the same sequence. A prompt of ``n``
tokens is ``n`` words drawn from a small vocabulary of common English words,
each a single token for the BPE tokenizers of the major model families (the
fake server's generate mode counts words, so there it is exact); the output
length goes into ``max_tokens``.

``ignore_eos`` (vLLM's and SGLang's extension: keep generating past the end of
sequence, so that every reply is ``max_tokens`` long) is not part of any
provider's published API. The registry's rows are hosted APIs whose reference
has no such field, and OpenAI rejects unknown parameters, so it goes only to
OpenAI-compatible endpoints described with ``Provider.custom`` (or added with
``register_provider`` under a new id), where self-hosted servers live.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Final, Literal

from .._client import provider_config
from .._errors import ConfigurationError
from .._registry import Provider
from .._types import ChatCompletionRequest, Message

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .._registry import ProviderConfig

__all__ = ["SyntheticRequests", "accepts_ignore_eos"]

# Short, common words: one token each for the GPT, Llama, Mistral, Qwen and
# Gemma tokenizers when preceded by a space.
_VOCABULARY: Final = tuple(
    """the of and to in is you that it he was for on are as with his they at be
    this have from or one had by word but not what all were we when your can said
    there use an each which she do how their if will up other about out many then
    them these so some her would make like him into time has look two more write go
    see number no way could people my than first water been call who oil its now
    find long down day did get come made may part over new sound take only little
    work know place year live me back give most very after thing our just name good
    sentence man think say great where help through much before line right too mean
    old any same tell boy follow came want show also around form three small set put
    end does another well large must big even such because turn here why ask went men
    read need land different home us move try kind hand picture again change off play
    spell air away animal house point page letter mother answer found study still
    learn should world high every near add food between own below country plant last
    school father keep tree never start city earth eye light thought head under story
    saw left few while along might close something seem next hard open example begin
    life always those both paper together got group often run""".split()
)


def accepts_ignore_eos(provider: Provider | ProviderConfig | str) -> bool:
    """Whether requests to ``provider`` may carry ``ignore_eos``: True for an
    OpenAI-compatible endpoint described with ``Provider.custom`` (vLLM,
    SGLang and the like), False for every registry row (OpenAI, Anthropic,
    Gemini, Cohere, Ollama, the hosted OpenAI-compatible services...).

    Raises:
        ConfigurationError: ``provider`` names no known provider.
    """
    config = provider_config(provider)
    known = {member.value for member in Provider}
    return config.family == "openai_chat" and config.id not in known


def _length(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"SyntheticRequests.{name} must be an int >= 1 (tokens), got {value!r}"
        )
    return value


class SyntheticRequests:
    """An endless iterable of chat requests with random prompts, for
    :func:`run_benchmark`.

    Every request is one user message of about ``prompt_tokens`` tokens of
    random common words, with ``max_tokens`` set to the drawn output length.
    Iterating twice gives the same requests (the seed restarts).

    Args:
        model: the model id of every request (``"auto"`` works).
        prompt_tokens: mean prompt length, in tokens (words). Default 256.
        output_tokens: mean ``max_tokens``. Default 128.
        distribution: how lengths vary around their mean: ``"constant"`` (the
            default: exactly the mean), ``"uniform"`` (from ``mean * (1 -
            spread)`` to ``mean * (1 + spread)``, vLLM's ``--random-range-ratio``)
            or ``"normal"`` (standard deviation ``spread * mean``). Lengths are
            at least 1.
        spread: see ``distribution``; >= 0, below 1 for ``"uniform"``.
        seed: seeds prompts and lengths (default 42).
        ignore_eos: ask the server to generate exactly ``max_tokens`` tokens
            (``extra={"ignore_eos": true}``). None (the default): only where
            :func:`accepts_ignore_eos` says the provider takes it, which needs
            ``provider``. True needs such a provider too.
        provider: the provider the requests are for, for ``ignore_eos``.

    Raises:
        ConfigurationError: a length, ``distribution`` or ``spread`` out of
            range, or ``ignore_eos=True`` for a provider that does not accept
            it (or without ``provider``).
    """

    def __init__(
        self,
        model: str,
        *,
        prompt_tokens: int = 256,
        output_tokens: int = 128,
        distribution: Literal["constant", "uniform", "normal"] = "constant",
        spread: float = 0.0,
        seed: int = 42,
        ignore_eos: bool | None = None,
        provider: Provider | ProviderConfig | str | None = None,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigurationError(
                f"SyntheticRequests.model must be a model id, got {model!r}"
            )
        self.model = model
        self.prompt_tokens = _length("prompt_tokens", prompt_tokens)
        self.output_tokens = _length("output_tokens", output_tokens)
        if distribution not in ("constant", "uniform", "normal"):
            raise ConfigurationError(
                f"SyntheticRequests.distribution must be 'constant', 'uniform' or "
                f"'normal', got {distribution!r}"
            )
        self.distribution = distribution
        if (
            isinstance(spread, bool)
            or not isinstance(spread, int | float)
            or spread < 0
        ):
            raise ConfigurationError(
                f"SyntheticRequests.spread must be a number >= 0, got {spread!r}"
            )
        if distribution == "uniform" and spread >= 1:
            raise ConfigurationError(
                f"SyntheticRequests.spread must be below 1 for a uniform "
                f"distribution (lengths from mean*(1-spread) to mean*(1+spread)), "
                f"got {spread!r}"
            )
        self.spread = float(spread)
        self.seed = seed
        accepted = provider is not None and accepts_ignore_eos(provider)
        if ignore_eos and not accepted:
            where = "no provider" if provider is None else f"provider {provider!r}"
            raise ConfigurationError(
                f"SyntheticRequests.ignore_eos=True with {where}: only OpenAI-"
                "compatible endpoints described with Provider.custom (vLLM, "
                "SGLang) accept it; pass provider=<that config>, or leave "
                "ignore_eos at None"
            )
        self.ignore_eos = accepted if ignore_eos is None else ignore_eos

    def __repr__(self) -> str:
        return (
            f"SyntheticRequests(model={self.model!r}, prompt_tokens="
            f"{self.prompt_tokens}, output_tokens={self.output_tokens}, "
            f"distribution={self.distribution!r}, spread={self.spread:g}, "
            f"seed={self.seed}, ignore_eos={self.ignore_eos})"
        )

    def _draw(self, rng: random.Random, mean: int) -> int:
        if self.distribution == "uniform":
            low = round(mean * (1 - self.spread))
            high = round(mean * (1 + self.spread))
            return max(1, rng.randint(low, high))
        if self.distribution == "normal":
            return max(1, round(rng.gauss(mean, self.spread * mean)))
        return mean

    def __iter__(self) -> Iterator[ChatCompletionRequest]:
        """Yield requests forever, the same sequence on every iteration."""
        rng = random.Random(self.seed)
        extra = {"ignore_eos": True} if self.ignore_eos else None
        choices = rng.choices
        while True:
            words = choices(_VOCABULARY, k=self._draw(rng, self.prompt_tokens))
            yield ChatCompletionRequest(
                self.model,
                [Message.user(" ".join(words))],
                max_tokens=self._draw(rng, self.output_tokens),
                extra=extra,
            )

    def take(self, count: int) -> list[ChatCompletionRequest]:
        """The first ``count`` requests, as a list."""
        iterator = iter(self)
        return [next(iterator) for _ in range(count)]


SyntheticRequests.__module__ = "ailib_sc.bench"
accepts_ignore_eos.__module__ = "ailib_sc.bench"
