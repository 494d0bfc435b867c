"""The one-shot commands: ``chat``, ``models``, ``demo`` and ``serve-fake``.

Each is an async function taking the :class:`RunContext` that turns Ctrl-C
into a clean stop (``chat --stream`` keeps the text that arrived) and returning
an exit status. Output goes to stdout, flushed as it goes; diagnostics to stderr.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import TYPE_CHECKING, Any

import anyio
import msgspec

from .._client import AiClient
from .._config import ConnectionOptions
from .._errors import AiLibError
from .._registry import Provider
from .._types import ChatCompletionRequest, Message
from ._common import CliFailure, ExitCode, failure_for

if TYPE_CHECKING:
    from .._types import ChatCompletionResponse
    from ._common import ClientSpec, RunContext

__all__ = ["FAMILIES", "ChatArgs", "chat", "demo", "models", "serve_fake"]

_ENCODER = msgspec.json.Encoder()


def _emit_json(value: Any) -> None:
    sys.stdout.write(_ENCODER.encode(value).decode() + "\n")
    sys.stdout.flush()


class ChatArgs(msgspec.Struct, frozen=True, kw_only=True):
    """The ``chat`` command line."""

    prompt: str
    system: str | None = None
    stream: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    json: bool = False


def _chat_request(
    spec: ClientSpec, client: AiClient, args: ChatArgs
) -> ChatCompletionRequest:
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    if not prompt.strip():
        raise CliFailure("empty prompt: give the text to send", ExitCode.USAGE)
    messages = [Message.system(args.system)] if args.system else []
    messages.append(Message.user(prompt))
    return ChatCompletionRequest(
        spec.model_for(client),
        messages,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
    )


def _result(resp: ChatCompletionResponse) -> dict[str, Any]:
    return {
        "ok": True,
        "text": resp.first_text(),
        "finish_reason": resp.choices[0].finish_reason if resp.choices else None,
        "model": resp.model,
        "usage": resp.usage,
        "stats": resp.stats,
    }


async def chat(spec: ClientSpec, args: ChatArgs, ctx: RunContext) -> int:
    """One chat completion; ``--stream`` prints text as it arrives."""
    client = spec.client()
    request = _chat_request(spec, client, args)
    try:
        async with client:
            if args.stream:
                return await _chat_stream(client, request, args, ctx)
            resp = await client.chat_completion(request)
    except AiLibError as exc:
        raise failure_for(exc, client.provider) from None
    if args.json:
        _emit_json(_result(resp))
    else:
        sys.stdout.write(resp.first_text() + "\n")
        sys.stdout.flush()
    return ExitCode.OK


async def _chat_stream(
    client: AiClient, request: ChatCompletionRequest, args: ChatArgs, ctx: RunContext
) -> int:
    out = sys.stdout
    printed = False
    try:
        async with client.chat_completion_stream(request) as stream:
            # Ctrl-C ends the stream (RST_STREAM / connection closed) and the
            # block exits without raising; the text printed so far stays.
            ctx.on_interrupt(stream.cancel)
            async for text in stream.text():
                if not args.json:
                    out.write(text)
                    out.flush()
                    printed = True
    except AiLibError:
        if printed:
            out.write("\n")  # end the partial line before the error
            out.flush()
        raise
    finally:
        ctx.clear_hooks()
    if args.json:
        partial = stream.partial
        _emit_json(
            {
                **_result(partial),
                "stats": stream.stats,
                "finish_reason": stream.finish_reason,
                "usage": stream.usage,
                "interrupted": ctx.interrupted,
            }
        )
    else:
        out.write("\n")
        out.flush()
    return ExitCode.INTERRUPTED if ctx.interrupted else ExitCode.OK


async def models(spec: ClientSpec, ctx: RunContext, *, json: bool) -> int:
    """List the provider's models, one id per line (``--json``: the objects)."""
    del ctx
    client = spec.client()
    try:
        async with client:
            found = await client.list_models()
    except AiLibError as exc:
        raise failure_for(exc, client.provider) from None
    if json:
        _emit_json(found)
    else:
        sys.stdout.write("".join(f"{m.id}\n" for m in found))
        sys.stdout.flush()
    return ExitCode.OK


#: ``serve-fake --family`` choices and the registry row each is served for.
FAMILIES = {
    "openai": Provider.OPENAI,
    "anthropic": Provider.ANTHROPIC,
    "gemini": Provider.GEMINI,
    "cohere": Provider.COHERE,
    "ollama": Provider.OLLAMA,
    "azure": Provider.AZURE_OPENAI,
}


async def serve_fake(
    ctx: RunContext,
    *,
    family: str,
    host: str,
    port: int,
    key_env: str | None,
    server_options: dict[str, Any],
    json: bool,
) -> int:
    """Run the bundled fake server until SIGINT/SIGTERM (exit 0); print the
    base URL of ``family`` first."""
    from ..testing import FakeProviderServer

    key = None
    if key_env:
        key = os.environ.get(key_env)
        if not key:
            raise CliFailure(
                f"--api-key-env {key_env}: the variable is unset or empty; set it "
                "to the key the server should require",
                ExitCode.USAGE,
            )
    try:
        server = FakeProviderServer(host=host, port=port, api_key=key, **server_options)
    except ValueError as exc:
        raise CliFailure(str(exc), ExitCode.USAGE) from None
    try:
        async with server:
            url = server.config_for(FAMILIES[family]).base_url
            if json:
                _emit_json({"base_url": url, "family": family, "port": server.port})
            else:
                sys.stdout.write(url + "\n")
                sys.stdout.flush()
            with anyio.CancelScope() as waiting:
                ctx.on_interrupt(waiting.cancel)  # Ctrl-C is how it stops: exit 0
                await anyio.sleep_forever()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CliFailure(
                f"port {port} on {host} is already in use: stop what is using it, "
                "or pick another with --port (--port 0 takes any free port)"
            ) from None
        raise CliFailure(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    return ExitCode.OK


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


async def demo(ctx: RunContext) -> int:
    """Chat, list models and stream against the bundled server, over HTTP/1.1
    and HTTP/2, then one call per wire family (no key, no network)."""
    del ctx
    from ..testing import FakeProviderServer

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
                print(f"  finish: {resp.choices[0].finish_reason}")
                if resp.usage is not None:
                    u = resp.usage
                    print(
                        f"  usage:  prompt={u.prompt_tokens} completion="
                        f"{u.completion_tokens} total={u.total_tokens} "
                        f"cached={u.cached_tokens} reasoning={u.reasoning_tokens}"
                    )
                listed = await client.list_models()
                print(f"[{label}] list_models -> {', '.join(m.id for m in listed)}")
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
    return ExitCode.OK
