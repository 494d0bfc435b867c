"""A string that will not show itself: the API key's container.

`SecretStr` is deliberately *not* a ``str`` subclass. A ``str`` subclass is a
``str`` to every serialiser (msgspec, json, pickle-to-text tooling) and would be
written out verbatim; an opaque object makes ``msgspec.to_builtins(options)`` and
``msgspec.json.encode(options)`` raise ``TypeError`` instead of leaking the key.
Pickling is the one way out, on purpose: a worker process needs the key.
"""

from __future__ import annotations

__all__ = ["SecretStr", "reveal"]


class SecretStr:
    """A secret string, such as an API key, that never appears in a repr or str.

    ``ConnectionOptions(api_key=...)`` and ``Provider.custom(api_key=...)`` wrap a
    plain ``str`` in one; you may also pass a ``SecretStr`` yourself.

    - ``repr()`` gives ``SecretStr('***')`` and ``str()`` gives ``'***'``, so
      f-strings and log lines show the mask, not the value.
    - Serialisers refuse it: ``msgspec.json.encode`` and ``msgspec.to_builtins``
      raise ``TypeError`` on a Struct holding one (a custom ``enc_hook=str`` writes
      ``"***"``).
    - It pickles with its value, so a client's options can be sent to a worker
      process. Pickled bytes therefore hold the key: treat them as a secret.
    - Two secrets are equal when their values are; ``bool()`` and ``len()`` are
      those of the value.

    Args:
        value: the secret text.

    Raises:
        TypeError: ``value`` is not a ``str``.
    """

    __slots__ = ("_secret_value",)
    _secret_value: str

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(
                f"SecretStr takes a str, got {type(value).__name__}; "
                "pass the key as text"
            )
        object.__setattr__(self, "_secret_value", value)

    def get_secret_value(self) -> str:
        """Return the secret in plain text. Keep the result out of logs."""
        return self._secret_value

    def __repr__(self) -> str:
        return "SecretStr('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SecretStr):
            return self._secret_value == other._secret_value
        return NotImplemented

    def __hash__(self) -> int:
        return hash((SecretStr, self._secret_value))

    def __bool__(self) -> bool:
        return bool(self._secret_value)

    def __len__(self) -> int:
        return len(self._secret_value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SecretStr is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("SecretStr is immutable")

    def __copy__(self) -> SecretStr:
        return self

    def __deepcopy__(self, memo: object) -> SecretStr:
        return self

    def __reduce__(self) -> tuple[type[SecretStr], tuple[str]]:
        return (SecretStr, (self._secret_value,))


def reveal(value: str | SecretStr | None) -> str | None:
    """The plain text of a key given as ``str`` or `SecretStr` (None stays None)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value


SecretStr.__module__ = "ailib_sc"
