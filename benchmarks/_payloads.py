"""Fixed bodies shared by the benchmarks and the fast server.

The response body is OpenAI's API reference example for ``POST /chat/completions``
(``x-oaiMeta.examples[Default].response``) with the model set to
``gpt-4o-mini``; the chunk is one ``chat.completion.chunk`` as OpenAI streams it.
Both are written out by hand, never produced by ailib_sc's own Structs.
"""

from __future__ import annotations

__all__ = ["CHUNK_BODY", "REQUEST_BODY", "RESPONSE_BODY"]

RESPONSE_BODY = (
    b'{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion",'
    b'"created":1741569952,"model":"gpt-4o-mini","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"Hello! How can I assist you today?",'
    b'"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,'
    b'"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},'
    b'"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
    b'"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},'
    b'"service_tier":"default","system_fingerprint":"fp_44709d6fcb"}'
)

CHUNK_BODY = (
    b'{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",'
    b'"object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-mini",'
    b'"choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}'
)

# What every client sends in the throughput benchmark (the raw probes send it
# verbatim; the real clients encode an equivalent request themselves).
REQUEST_BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'
