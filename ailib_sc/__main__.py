"""``python -m ailib_sc demo``: see :mod:`ailib_sc._cli`."""

from __future__ import annotations

import sys

from ._cli import main

sys.exit(main())
