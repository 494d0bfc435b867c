"""The model routes of `FakeProviderServer`: ``GET /v1/models`` and ``/models/{id}``.

Theory of operation: `ModelCatalog` is built once per server from the model
ids it lists.  The whole list and every single-model body are encoded up front;
with a page size the list is answered in pages instead, each encoded per
request from the entries.  Pages follow OpenAI's cursor convention for
paginated lists: ``?limit=`` (how many) and ``?after=<id of the last entry
seen>``, answered with ``first_id``, ``last_id`` and ``has_more``.  OpenAI's
own ``/models`` is not paginated today; OpenAI-compatible gateways with many
models are, which is what this lets a client be tested against.
"""

from __future__ import annotations

import collections
import urllib.parse
from typing import Any, Final

from ailib_sc.testing._replies import encode_json, error_body

__all__ = ["DEFAULT_MODELS", "ModelCatalog"]

# Where the shapes come from: the OpenAPI document of OpenAI's API reference
# (openai-openapi.yaml, a copy is in the project's shared specs).

#: `paths./models.get.x-oaiMeta.examples.response`, first entry of `data`;
#: `id` is filled in per model.
MODEL_EXAMPLE: Final[dict[str, Any]] = {
    "id": "model-id-0",
    "object": "model",
    "created": 1686935002,
    "owned_by": "organization-owner",
    "shutdown_date": None,
}

#: `paths./models.get.x-oaiMeta.examples.response` without its entries
#: (`components.schemas.ListModelsResponse`: `object` and `data` only).
MODEL_LIST_EXAMPLE: Final[dict[str, Any]] = {"object": "list", "data": []}

DEFAULT_MODELS: Final = (
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1-mini",
    "gpt-4.1",
    "o4-mini",
    "text-embedding-3-small",
)


class ModelCatalog:
    """The model ids a server lists, and the bodies of the model routes.

    Args:
        models: The model ids, in list order.
        page_size: None: ``GET /v1/models`` answers with the whole list in
            OpenAI's unpaginated shape.  Otherwise pages of at most this many
            entries by default (see `list_models`).

    Raises:
        ValueError: `page_size` is below 1, or an id repeats while it is set
            (the ``after`` cursor names an id, so ids must be unique).
    """

    __slots__ = (
        "_entries",
        "_ids",
        "_index",
        "_list_body",
        "_page_size",
        "_retrieved",
    )

    def __init__(self, models: tuple[str, ...], *, page_size: int | None) -> None:
        if page_size is not None:
            if page_size < 1:
                raise ValueError(f"models_page_size={page_size}: must be >= 1 or None")
            repeated = sorted(
                m for m, n in collections.Counter(models).items() if n > 1
            )
            if repeated:
                raise ValueError(
                    f"models: {', '.join(map(repr, repeated))} listed more than "
                    "once; give unique ids with models_page_size (the `after` "
                    "cursor names an id)"
                )
        self._page_size = page_size
        self._ids = tuple(models)
        self._entries = [{**MODEL_EXAMPLE, "id": model} for model in models]
        self._list_body = encode_json({**MODEL_LIST_EXAMPLE, "data": self._entries})
        self._retrieved = {e["id"]: encode_json(e) for e in self._entries}
        self._index = {model: index for index, model in enumerate(models)}

    @property
    def ids(self) -> tuple[str, ...]:
        """The model ids, in list order (for other families' model lists)."""
        return self._ids

    @property
    def page_size(self) -> int | None:
        """Entries per page by default, or None for one unpaginated list."""
        return self._page_size

    def list_models(self, query: str) -> tuple[int, bytes]:
        """Answer ``GET /v1/models?<query>`` with ``(status, body)``.

        Without a page size the query is ignored.  With one, ``limit`` (an
        integer >= 1; default: the page size) and ``after`` (a listed model id;
        default: from the start) pick the page, answered as OpenAI's
        cursor-paginated lists are (`components.schemas.ListAssistantsResponse`,
        `ListFilesResponse`: ``object``, ``data``, ``first_id``, ``last_id``,
        ``has_more``).  An empty page (after the last id) has ``first_id`` and
        ``last_id`` null, as the lists whose ids may be null declare them
        (`ListFineTuningCheckpointPermissionResponse`).  A bad ``limit`` or an
        unknown ``after`` is a 400 ``invalid_value`` naming the parameter.
        """
        page_size = self._page_size
        if page_size is None:
            return 200, self._list_body
        params = urllib.parse.parse_qs(query, keep_blank_values=True)
        limit = page_size
        if "limit" in params:
            raw = params["limit"][0]
            if not (raw.isascii() and raw.isdigit() and int(raw) >= 1):
                return _invalid("limit", f"{raw!r}. Expected an integer >= 1.")
            limit = int(raw)
        start = 0
        if "after" in params:
            after = params["after"][0]
            index = self._index.get(after)
            if index is None:
                return _invalid(
                    "after", f"{after!r}. Expected the id of a listed model."
                )
            start = index + 1
        page = self._entries[start : start + limit]
        body = {
            **MODEL_LIST_EXAMPLE,
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": start + limit < len(self._entries),
        }
        return 200, encode_json(body)

    def retrieve(self, model: str) -> tuple[int, bytes]:
        """Answer ``GET /v1/models/{model}`` (`model` already unquoted)."""
        found = self._retrieved.get(model)
        if found is not None:
            return 200, found
        return 404, error_body(
            f"The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error",
            param="model",
            code="model_not_found",
        )


def _invalid(param: str, detail: str) -> tuple[int, bytes]:
    return 400, error_body(
        f"Invalid '{param}': {detail}",
        "invalid_request_error",
        param=param,
        code="invalid_value",
    )
