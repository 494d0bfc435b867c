"""Command line: ``ailib-sc demo | chat | models`` (also ``python -m ailib_sc``).

``demo`` needs no key and no network: it starts the bundled
:class:`ailib_sc.testing.FakeProviderServer` on loopback and talks to it over
HTTP/1.1 and HTTP/2.
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import TYPE_CHECKING

import anyio

from ._client import AiClient
from ._config import ConnectionOptions
from ._errors import AiLibError
from ._registry import Provider
from ._types import ChatCompletionRequest, Message

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

__all__ = ["main"]

# Shown by --help, so plain text: no reST markup (the module docstring is for
# Sphinx readers).
_DESCRIPTION = """\
Talk to an LLM provider from the shell (also: python -m ailib_sc).

chat and models read the key from <PROVIDER>_API_KEY (OPENAI_API_KEY, ...),
and <PROVIDER>_BASE_URL and <PROVIDER>_MODEL when set. demo needs no key and
no network: it starts the bundled fake provider server on loopback and talks
to it over HTTP/1.1 and HTTP/2, then makes one call in each wire family
(Anthropic, Gemini, Cohere, Ollama, Azure OpenAI).
"""


# One row per wire family for the demo (besides OpenAI's, shown above).
_FAMILY_DEMO = (
    (Provider.ANTHROPIC, "claude-sonnet-4-5"),
    (Provider.GEMINI, "gemini-2.5-flash"),
    (Provider.COHERE, "command-a-03-2025"),
    (Provider.OLLAMA, "llama3.2"),
    (Provider.AZURE_OPENAI, "my-gpt-4o-deployment"),
)


def _request(model: str, prompt: str) -> ChatCompletionRequest:
    return ChatCompletionRequest(model, [Message.user(prompt)])


async def _demo() -> None:
    from .testing import FakeProviderServer

    async with FakeProviderServer() as server:
        print(f"fake provider server listening at {server.base_url}")
        provider = Provider.custom("fake", server.base_url)
        for label, http2 in (("HTTP/1.1", False), ("HTTP/2 (h2c)", True)):
            options = ConnectionOptions(http2=http2)
            async with AiClient(provider, options) as client:
                req = _request("gpt-4o-mini", "Hello")
                resp = await client.chat_completion(req)
                version = server.requests[-1].http_version
                print(f"\n[{label}] chat_completion -> served over {version}")
                print(f"  model:  {resp.model}")
                print(f"  text:   {resp.first_text()}")
                finish = resp.choices[0].finish_reason
                print(f"  finish: {finish}")
                if resp.usage is not None:
                    u = resp.usage
                    print(
                        f"  usage:  prompt={u.prompt_tokens} completion="
                        f"{u.completion_tokens} total={u.total_tokens} "
                        f"cached={u.cached_tokens} reasoning={u.reasoning_tokens}"
                    )
                models = await client.list_models()
                print(f"[{label}] list_models -> {', '.join(m.id for m in models)}")
                print(f"[{label}] chat_completion_stream -> ", end="")
                async with client.chat_completion_stream(req) as stream:
                    async for text in stream.text():
                        print(text, end="|", flush=True)
                st = stream.stats
                assert st is not None
                print(
                    f"\n  {st.chunks} chunks, first token after "
                    f"{st.time_to_first_token or 0.0:.4f} s, finish={stream.finish_reason}"
                )
        print("\nOne call per wire family, same request and chunk types (HTTP/2):")
        for member, model in _FAMILY_DEMO:
            config = server.config_for(member)
            options = ConnectionOptions(http2=True, api_key="demo-key")
            async with AiClient(config, options) as client:
                resp = await client.chat_completion(_request(model, "Hello"))
                async with client.chat_completion_stream(_request(model, "Hi")) as s:
                    pieces = [text async for text in s.text()]
                path = server.requests[-1].path
                print(
                    f"  {config.name:<24} {resp.first_text()!r} "
                    f"(finish={resp.choices[0].finish_reason}); stream: "
                    f"{len(pieces)} pieces via POST {path}"
                )


async def _chat(provider: str, model: str, prompt: str) -> None:
    async with AiClient(provider) as client:
        resp = await client.chat_completion(_request(model, prompt))
        print(resp.first_text())


async def _models(provider: str) -> None:
    async with AiClient(provider) as client:
        for m in await client.list_models():
            print(m.id)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ailib-sc`` script. Returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="ailib-sc",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--backend",
        choices=("asyncio", "trio"),
        default="asyncio",
        help="event loop to run on (default asyncio)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    known = ", ".join(p.value for p in Provider)
    provider_help = (
        f"provider name, one of {known} (default openai); 'provider/model' "
        "(anthropic/claude-sonnet-4-5) also names the model"
    )
    demo_help = "chat and list models against the bundled local server"
    sub.add_parser(
        "demo", help=demo_help, description=demo_help + " (no key, no network)"
    )
    chat_help = "one chat completion against a real provider"
    chat = sub.add_parser("chat", help=chat_help, description=chat_help)
    chat.add_argument("prompt", help="the user message to send")
    chat.add_argument("--provider", default="openai", help=provider_help)
    chat.add_argument(
        "--model",
        default="auto",
        help="model id; auto (the default) means <PROVIDER>_MODEL, else the "
        "provider's default model",
    )
    models_help = "list a provider's models"
    models = sub.add_parser("models", help=models_help, description=models_help)
    models.add_argument("--provider", default="openai", help=provider_help)
    args = parser.parse_args(argv)

    job: Callable[[], Awaitable[None]]
    if args.command == "demo":
        job = _demo
    elif args.command == "chat":
        job = functools.partial(_chat, args.provider, args.model, args.prompt)
    else:
        job = functools.partial(_models, args.provider)
    try:
        anyio.run(job, backend=args.backend)
    except AiLibError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
