"""What every command shares: exit codes, one-line failures in CLI terms, the
client the global flags describe, and Ctrl-C handling.

Library errors name the Python API (``ConnectionOptions(api_key=...)``); a
shell user needs the flag or the variable instead. :func:`failure_for` is the
one place where an error becomes a line on stderr and an exit code.
"""

from __future__ import annotations

import enum
import os
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from .._client import AiClient, provider_config
from .._config import ConnectionOptions
from .._errors import (
    AiLibError,
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    InvalidRequestError,
    MissingApiKeyError,
    PermissionDeniedError,
)
from .._policy import RetryPolicy
from .._registry import AuthStyle, Provider

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .._registry import ProviderConfig

__all__ = [
    "CUSTOM",
    "ExitCode",
    "CliFailure",
    "ClientSpec",
    "RunContext",
    "cli_terms",
    "failure_for",
    "key_hint",
    "run_interruptible",
]


#: ``--provider custom``: the OpenAI-compatible endpoint at ``--base-url``,
#: described with ``Provider.custom`` (so ``bench`` may send ``ignore_eos``).
CUSTOM = "custom"


class ExitCode(enum.IntEnum):
    """The exit statuses of ``ailib-sc`` (also listed in ``--help``)."""

    OK = 0
    ERROR = 1  # the provider or the network failed; a bug
    USAGE = 2  # bad flags, bad input or configuration
    AUTH = 3  # no key, or the provider refused it
    PARTIAL = 4  # batch: finished, but some lines are errors
    INTERRUPTED = 130  # SIGINT or SIGTERM


class CliFailure(Exception):
    """An expected failure: one line on stderr (``error: <message>``), no
    traceback, and an exit code."""

    def __init__(self, message: str, code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# Library phrases that name the Python API, and what a shell user types instead.
_CLI_TERMS = (
    ("pass ConnectionOptions(base_url=...)", "pass --base-url"),
    ("or pass ConnectionOptions(api_key=...)", "or name it with --api-key-env"),
    (
        "or use Provider.custom(...)",
        "or pass --base-url for any OpenAI-compatible gateway",
    ),
    ("ConnectionOptions.timeout", "--timeout"),
    ("ConnectionOptions.connect_timeout", "--connect-timeout"),
    ("ConnectionOptions.read_timeout", "--read-timeout"),
    ("ConnectionOptions.pool_size", "--concurrency"),
)


def cli_terms(message: str) -> str:
    """``message`` with Python API names replaced by the flags that set them."""
    for api, flag in _CLI_TERMS:
        message = message.replace(api, flag)
    return message


def key_hint(config: ProviderConfig) -> str:
    """Where the key for ``config`` is read from, as a fix to print."""
    names = " or ".join(config.key_env)
    if names:
        return (
            f"check {names}, or name the variable that holds the key with --api-key-env"
        )
    return "name the variable that holds the key with --api-key-env"


def failure_for(err: AiLibError, config: ProviderConfig | None = None) -> CliFailure:
    """The one line and the exit code for a library error.

    ``config`` is the provider row in use, for the name of its key variable.
    """
    name = type(err).__name__
    if isinstance(err, MissingApiKeyError):
        provider = config.id if config is not None else err.provider
        names = " or ".join(config.key_env) if config is not None else ""
        where = f"set {names}" if names else "set the key's variable"
        return CliFailure(
            f"no API key for provider {provider!r}: {where}, or name the variable "
            "that holds it with --api-key-env",
            ExitCode.AUTH,
        )
    text = cli_terms(str(err))
    if isinstance(err, AuthenticationError | PermissionDeniedError):
        hint = key_hint(config) if config is not None else "check the API key"
        return CliFailure(f"{name}: {text}; {hint}", ExitCode.AUTH)
    if isinstance(err, ConfigurationError | InvalidRequestError):
        return CliFailure(f"{name}: {text}", ExitCode.USAGE)
    if isinstance(err, ConnectError):
        return CliFailure(
            f"{name}: {text}; check --base-url (or <PROVIDER>_BASE_URL) and the network"
        )
    return CliFailure(f"{name}: {text}")


@dataclass(frozen=True)
class ClientSpec:
    """The client the global flags describe.

    Attributes:
        provider: a provider name, alias or ``provider/model`` string; None
            with ``base_url`` set means an OpenAI-compatible gateway, and so
            does ``"custom"`` (``"custom/MODEL"``), which requires
            ``base_url``.
        model: model id, or ``"auto"`` (``<PROVIDER>_MODEL``, else the
            provider's default model).
        base_url: API root replacing the provider's.
        api_key_env: the variable holding the key, replacing the provider's.
        http2: True = HTTP/2 also on http:// (h2c), False = HTTP/1.1 only,
            None = HTTP/2 where TLS offers it.
        timeout / connect_timeout / read_timeout: seconds, None = the library's.
        retries: retries per request after the first attempt (0 = none).
        pool_size: connections per origin (at least the batch concurrency).
    """

    provider: str | None = None
    model: str = "auto"
    base_url: str | None = None
    api_key_env: str | None = None
    http2: bool | None = None
    timeout: float | None = None
    connect_timeout: float | None = None
    read_timeout: float | None = None
    retries: int = 0
    pool_size: int = 100

    def config(self, provider: str | None = None) -> ProviderConfig:
        """The provider row for ``provider`` (None: the flags' own provider)
        with ``--base-url`` and ``--api-key-env`` applied to the flags' own.

        Raises:
            CliFailure: unknown provider or bad URL (exit 2).
        """
        own = provider is None
        name = self.provider if own else provider
        try:
            if own and name is None and self.base_url is not None:
                return Provider.custom(
                    "gateway", self.base_url, api_key_env=self.api_key_env
                )
            if own and name is not None and self.is_custom:
                return self._custom(name)
            config = provider_config(name or "openai")
        except ConfigurationError as exc:
            raise failure_for(exc) from None
        if own and self.api_key_env:
            config = config.replace(key_env=(self.api_key_env,))
            if config.auth is AuthStyle.NONE:
                config = config.replace(auth=AuthStyle.BEARER)
        return config

    @property
    def is_custom(self) -> bool:
        """``--provider custom`` (or ``custom/MODEL``): the OpenAI-compatible
        endpoint at ``--base-url``."""
        name = self.provider
        return name is not None and name.partition("/")[0].lower() == CUSTOM

    def _custom(self, name: str) -> ProviderConfig:
        """``Provider.custom("custom", --base-url)``; a ``custom/MODEL`` form
        names its model, as ``provider/model`` does for registry providers."""
        if self.base_url is None:
            raise CliFailure(
                "--provider custom needs --base-url URL: the API root of the "
                "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (or "
                "set AILIB_BASE_URL)",
                ExitCode.USAGE,
            )
        config = Provider.custom(CUSTOM, self.base_url, api_key_env=self.api_key_env)
        model = name.partition("/")[2]
        if model:
            config = config.replace(default_model=model, model_env=None)
        return config

    def options(self, *, own: bool = True) -> ConnectionOptions:
        """Connection options from the flags (``--base-url`` only for the
        flags' own registry provider: a custom endpoint has it in its row)."""
        retry = RetryPolicy(max_attempts=self.retries + 1) if self.retries else None
        pinned = own and self.provider is not None and not self.is_custom
        return ConnectionOptions(
            base_url=self.base_url if pinned else None,
            http2=self.http2,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            pool_size=self.pool_size,
            retry=retry,
        )

    def client(self, provider: str | None = None) -> AiClient:
        """An unopened client for ``provider`` (None: the flags' own).

        Raises:
            CliFailure: unknown provider, bad URL or option (exit 2), no key
                (exit 3).
        """
        config = self.config(provider)
        try:
            return AiClient(config, self.options(own=provider is None))
        except AiLibError as exc:
            raise failure_for(exc, config) from None

    def model_for(self, client: AiClient, model: str | None = None) -> str:
        """``model`` (default ``--model``) resolved for ``client``.

        Raises:
            CliFailure: ``auto`` with no model to take (exit 2).
        """
        wanted = self.model if model is None else model
        try:
            return client.resolve_model(wanted)
        except ConfigurationError:
            config = client.provider
            env = f", or set {config.model_env}" if config.model_env else ""
            raise CliFailure(
                f"no model for provider {config.id!r}: pass --model (-m){env}",
                ExitCode.USAGE,
            ) from None


class RunContext:
    """Ctrl-C for one command: the first SIGINT or SIGTERM sets
    :attr:`interrupted` and calls the hooks registered with :meth:`on_interrupt`
    (``stream.cancel``, say), or, with none registered, cancels the command; a
    second signal ends the process at once, killed by that signal."""

    def __init__(self) -> None:
        self.interrupted = False
        self.signal: int | None = None
        self.scope = anyio.CancelScope()
        self._hooks: list[Callable[[], object]] = []

    def on_interrupt(self, hook: Callable[[], object]) -> None:
        """Call ``hook`` (sync) on interruption instead of cancelling."""
        self._hooks.append(hook)

    def clear_hooks(self) -> None:
        self._hooks.clear()

    def fire(self, signum: int) -> None:
        """What a signal does; also the way to interrupt from code."""
        if self.interrupted:
            # A second Ctrl-C: skip the cleanup and die of the signal (a shell
            # then reports 128 + its number: 130 for SIGINT).
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.interrupted = True
        self.signal = signum
        if self._hooks:
            for hook in self._hooks:
                hook()
        else:
            self.scope.cancel()


async def run_interruptible(body: Callable[[RunContext], Awaitable[int]]) -> int:
    """Run ``body(ctx)`` with SIGINT and SIGTERM handled by ``ctx`` (see
    :class:`RunContext`); return its exit status, or 130 if it was cancelled by
    a signal. Its exception, if any, is re-raised as it is (not in a group)."""
    ctx = RunContext()
    code = int(ExitCode.INTERRUPTED)
    error: Exception | None = None
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

        async def watch() -> None:
            async for signum in signals:
                ctx.fire(signum)

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            with ctx.scope:
                try:
                    code = await body(ctx)
                except Exception as exc:
                    error = exc
            tg.cancel_scope.cancel()
    if error is not None:
        raise error
    return code
