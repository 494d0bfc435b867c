"""ailib_sc.sync: the blocking facade, for scripts, notebooks and thread pools.

The verbs of :class:`ailib_sc.AiClient` with the same names, arguments, types
and errors, blocking, on an event loop the client runs in a thread of its own::

    from ailib_sc import ChatCompletionRequest, Message, Provider
    from ailib_sc.sync import AiClient

    with AiClient(Provider.OPENAI) as client:
        request = ChatCompletionRequest("gpt-4o-mini", [Message.user("Hi")])
        print(client.chat_completion(request).first_text())
        with client.chat_completion_stream(request) as stream:
            for chunk in stream:
                ...

Requests, responses, chunks, batch results and errors are the types of
:mod:`ailib_sc`; only the client and its streams are blocking classes of their
own. ``import ailib_sc`` does not import this package.
"""

from __future__ import annotations

from ._batch import BatchStream as BatchStream
from ._client import AiClient as AiClient
from ._client import quick_chat_text as quick_chat_text
from ._stream import CancelHandle as CancelHandle
from ._stream import ChatCompletionStream as ChatCompletionStream
from ._stream import StreamWithCancel as StreamWithCancel

__all__ = (
    "AiClient",
    "BatchStream",
    "CancelHandle",
    "ChatCompletionStream",
    "StreamWithCancel",
    "quick_chat_text",
)

for _public in (
    AiClient,
    BatchStream,
    CancelHandle,
    ChatCompletionStream,
    StreamWithCancel,
    quick_chat_text,
):
    _public.__module__ = __name__
del _public
