"""One-liners: ``await quick_chat_text(Provider.GROQ, "Say hi")``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._client import AiClient
from ._types import ChatCompletionRequest, Message, Role

if TYPE_CHECKING:
    from ._config import ConnectionOptions
    from ._registry import Provider, ProviderConfig

__all__ = ["quick_chat_text"]


async def quick_chat_text(
    provider: Provider | ProviderConfig | str,
    prompt: str,
    *,
    model: str | None = None,
    options: ConnectionOptions | None = None,
) -> str:
    """Ask one question and return the answer's text.

    Opens a client, sends one user message, closes the client. For more than a
    handful of calls, keep an :class:`AiClient` open instead.

    Args:
        provider: provider, custom config or provider name.
        prompt: the user message.
        model: model id; None means ``"auto"`` (``<PROVIDER>_MODEL`` or the
            provider's default).
        options: connection options.

    Raises:
        MissingApiKeyError, ApiError, TransportError: as :meth:`AiClient.chat_completion`.
    """
    request = ChatCompletionRequest(
        model=model or "auto", messages=[Message(role=Role.USER, content=prompt)]
    )
    async with AiClient(provider, options) as client:
        response = await client.chat_completion(request)
    return response.first_text()


quick_chat_text.__module__ = "ailib_sc"
