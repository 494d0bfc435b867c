"""ailib_sc: one fast, typed, structured-concurrency client for every major LLM
provider, for trio and asyncio programs.

>>> async with AiClient(Provider.OPENAI) as client:
...     resp = await client.chat_completion(ChatCompletionRequest(
...         model="gpt-4o-mini",
...         messages=[Message(role=Role.USER, content=Content.Text("Hello"))]))
...     print(resp.first_text())
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._chunks import ChatCompletionChunk as ChatCompletionChunk
from ._chunks import ChunkChoice as ChunkChoice
from ._chunks import Delta as Delta
from ._chunks import FunctionCallDelta as FunctionCallDelta
from ._chunks import ToolCallDelta as ToolCallDelta
from ._client import AiClient as AiClient
from ._config import ConnectionOptions as ConnectionOptions
from ._content import Content as Content
from ._content import ContentPart as ContentPart
from ._errors import AiLibError as AiLibError
from ._errors import ApiError as ApiError
from ._errors import AuthenticationError as AuthenticationError
from ._errors import BadRequestError as BadRequestError
from ._errors import ClientClosedError as ClientClosedError
from ._errors import ClientStateError as ClientStateError
from ._errors import ConfigurationError as ConfigurationError
from ._errors import ConflictError as ConflictError
from ._errors import ConnectError as ConnectError
from ._errors import ConnectTimeoutError as ConnectTimeoutError
from ._errors import ContentFilterError as ContentFilterError
from ._errors import ContextLengthError as ContextLengthError
from ._errors import IncompleteStreamError as IncompleteStreamError
from ._errors import InvalidRequestError as InvalidRequestError
from ._errors import MissingApiKeyError as MissingApiKeyError
from ._errors import ModelNotFoundError as ModelNotFoundError
from ._errors import NotFoundError as NotFoundError
from ._errors import OverloadedError as OverloadedError
from ._errors import PermissionDeniedError as PermissionDeniedError
from ._errors import PoolTimeoutError as PoolTimeoutError
from ._errors import ProxyError as ProxyError
from ._errors import QuotaExceededError as QuotaExceededError
from ._errors import RateLimitError as RateLimitError
from ._errors import ReadTimeoutError as ReadTimeoutError
from ._errors import RemoteProtocolError as RemoteProtocolError
from ._errors import RequestRefusedError as RequestRefusedError
from ._errors import RequestTimeoutError as RequestTimeoutError
from ._errors import ResponseDecodeError as ResponseDecodeError
from ._errors import ResponseTooLargeError as ResponseTooLargeError
from ._errors import ServerError as ServerError
from ._errors import TransportError as TransportError
from ._errors import TransportTimeoutError as TransportTimeoutError
from ._errors import UnprocessableEntityError as UnprocessableEntityError
from ._errors import WriteTimeoutError as WriteTimeoutError
from ._policy import RetryPolicy as RetryPolicy
from ._quick import quick_chat_text as quick_chat_text
from ._registry import AuthStyle as AuthStyle
from ._registry import Capabilities as Capabilities
from ._registry import Provider as Provider
from ._registry import ProviderConfig as ProviderConfig
from ._registry import register_provider as register_provider
from ._secret import SecretStr as SecretStr
from ._types import CallStats as CallStats
from ._types import ChatCompletionRequest as ChatCompletionRequest
from ._types import ChatCompletionResponse as ChatCompletionResponse
from ._types import Choice as Choice
from ._types import ClientState as ClientState
from ._types import CompletionTokensDetails as CompletionTokensDetails
from ._types import FunctionCall as FunctionCall
from ._types import FunctionDefinition as FunctionDefinition
from ._types import Message as Message
from ._types import ModelInfo as ModelInfo
from ._types import PoolStatistics as PoolStatistics
from ._types import PromptTokensDetails as PromptTokensDetails
from ._types import ReasoningDetail as ReasoningDetail
from ._types import ResponseFormat as ResponseFormat
from ._types import Role as Role
from ._types import Tool as Tool
from ._types import ToolCall as ToolCall
from ._types import ToolChoice as ToolChoice
from ._types import ToolChoiceFunction as ToolChoiceFunction
from ._types import Usage as Usage

if TYPE_CHECKING:
    from ._batch import BatchResults as BatchResults
    from ._batch import BatchStatistics as BatchStatistics
    from ._batch import BatchStream as BatchStream
    from ._streaming import CancelHandle as CancelHandle
    from ._streaming import ChatCompletionStream as ChatCompletionStream
    from ._streaming import StreamWithCancel as StreamWithCancel

__version__ = "0.1.0"

# Loaded on first use: only a call needs them, and `import ailib_sc` stays cheap.
_LAZY = {
    "BatchResults": "_batch",
    "BatchStatistics": "_batch",
    "BatchStream": "_batch",
    "CancelHandle": "_streaming",
    "ChatCompletionStream": "_streaming",
    "StreamWithCancel": "_streaming",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ailib_sc' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"ailib_sc.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = (
    "AiClient",
    "AiLibError",
    "ApiError",
    "AuthStyle",
    "AuthenticationError",
    "BadRequestError",
    "BatchResults",
    "BatchStatistics",
    "BatchStream",
    "CallStats",
    "CancelHandle",
    "Capabilities",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatCompletionResponse",
    "ChatCompletionStream",
    "Choice",
    "ChunkChoice",
    "ClientClosedError",
    "ClientState",
    "ClientStateError",
    "CompletionTokensDetails",
    "ConfigurationError",
    "ConflictError",
    "ConnectError",
    "ConnectTimeoutError",
    "ConnectionOptions",
    "Content",
    "ContentFilterError",
    "ContentPart",
    "ContextLengthError",
    "Delta",
    "FunctionCall",
    "FunctionCallDelta",
    "FunctionDefinition",
    "IncompleteStreamError",
    "InvalidRequestError",
    "Message",
    "MissingApiKeyError",
    "ModelInfo",
    "ModelNotFoundError",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "PoolStatistics",
    "PoolTimeoutError",
    "PromptTokensDetails",
    "Provider",
    "ProviderConfig",
    "ProxyError",
    "QuotaExceededError",
    "RateLimitError",
    "ReadTimeoutError",
    "ReasoningDetail",
    "RemoteProtocolError",
    "RequestRefusedError",
    "RequestTimeoutError",
    "ResponseDecodeError",
    "ResponseFormat",
    "ResponseTooLargeError",
    "RetryPolicy",
    "Role",
    "SecretStr",
    "ServerError",
    "StreamWithCancel",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
    "ToolChoiceFunction",
    "TransportError",
    "TransportTimeoutError",
    "UnprocessableEntityError",
    "Usage",
    "WriteTimeoutError",
    "quick_chat_text",
    "register_provider",
)
