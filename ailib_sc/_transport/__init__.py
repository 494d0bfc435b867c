"""Transport: the only code that imports httpcore or h2."""

from __future__ import annotations

from ._connect import Origin as Origin
from ._response import Response as Response
from ._transport import Transport as Transport

__all__ = ("Origin", "Response", "Transport")
