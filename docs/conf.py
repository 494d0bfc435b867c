"""Sphinx configuration for the ailib_sc documentation.

Build with ``sphinx-build -n -W -b html docs docs/_build/html`` (``nox -s docs``):
nitpicky, warnings are errors, and no network access (intersphinx is off).
"""

from __future__ import annotations

import importlib.metadata
import re
import ssl
import types

import ailib_sc

# ConnectionOptions.ssl_context is annotated with a string naming ssl.SSLContext,
# so that `import ailib_sc` does not import ssl (11 ms). autodoc resolves it in
# the namespace of the class's __module__, "ailib_sc", so it gets the name here.
ailib_sc.ssl = ssl  # type: ignore[attr-defined]

# -- Project -------------------------------------------------------------------

project = "ailib_sc"
author = "ailib_sc developers"
copyright = "ailib_sc developers"
try:
    release = importlib.metadata.version("ailib_sc")
except importlib.metadata.PackageNotFoundError:  # building from a bare checkout
    release = "0.1.0"
version = ".".join(release.split(".")[:2])

# -- General -------------------------------------------------------------------

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinxcontrib_trio",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_generated", "Thumbs.db", ".DS_Store"]
language = "en"

# Every cross-reference must resolve; the exceptions are listed below.
nitpicky = True

# No intersphinx: the build must not touch the network. Names from the standard
# library and third-party packages that appear in signatures therefore cannot
# be linked; they are listed here so the nitpicky build accepts them.
nitpick_ignore = [
    ("py:class", "ray.data.Dataset"),
    ("py:class", "ray.data.dataset.Dataset"),
    ("py:class", "ssl.SSLContext"),
    ("py:class", "os.PathLike"),
    ("py:class", "anyio.Event"),
    ("py:class", "msgspec.Struct"),
    ("py:class", "collections.abc.Mapping"),
    ("py:class", "types.TracebackType"),
    ("py:class", "msgspec.UnsetType"),
    ("py:exc", "msgspec.DecodeError"),
    ("py:exc", "OSError"),
    ("py:exc", "ValueError"),
    ("py:exc", "RuntimeError"),
]

# -- MyST ----------------------------------------------------------------------

myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

# -- autodoc / napoleon ---------------------------------------------------------

# sphinxcontrib-trio hooks into autodoc's class-based documenters (it marks
# coroutine methods ``await``); Sphinx 9 keeps them behind this switch.
autodoc_use_legacy_class_based = True

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# Types are in the rendered signatures; "Args:" becomes a plain field list, so
# grouped entries such as "chat_path / models_path" render as written.
napoleon_use_param = False
napoleon_include_init_with_doc = False
# Render "Attributes:" as a plain field list (like "Args:") instead of one
# ``.. attribute::`` per entry: Struct fields are documented once, in their
# class's docstring, and entries such as "presence_penalty / frequency_penalty"
# stay readable text rather than becoming broken cross-references.
napoleon_custom_sections = [("Attributes", "params_style")]

# -- HTML ----------------------------------------------------------------------

html_theme = "alabaster"
html_title = f"ailib_sc {release}"
html_static_path: list[str] = []
html_theme_options = {
    "description": "An async LLM client for trio and asyncio",
    "fixed_sidebar": True,
}


# -- Local hooks -----------------------------------------------------------------


def _struct_defaults(app, what, name, obj, options, signature, return_annotation):
    """Show ``msgspec.field(default_factory=dict)`` defaults as ``{}``.

    ``inspect.signature`` renders such defaults as ``<factory>``, which is not a
    Python expression, so Sphinx's signature parser gives up on the whole line.
    """
    if not signature or "<factory>" not in signature or not isinstance(obj, type):
        return None
    import msgspec

    if not issubclass(obj, msgspec.Struct):
        return None
    for field in msgspec.structs.fields(obj):
        factory = field.default_factory
        if factory is msgspec.NODEFAULT:
            continue
        shown = {dict: "{}", list: "[]", tuple: "()"}.get(
            factory, f"{getattr(factory, '__name__', 'factory')}()"
        )
        pattern = re.compile(rf"(\b{re.escape(field.name)}: [^=]*?) = <factory>")
        signature = pattern.sub(lambda m: f"{m.group(1)} = {shown}", signature, count=1)
    return signature, return_annotation




def _check_public_names(app, env):
    """Fail the build when a name in ``ailib_sc.__all__`` has no reference entry."""
    import ailib_sc
    import ailib_sc.testing

    from sphinx.util import logging

    documented = set(env.get_domain("py").objects)
    missing = []
    for module in (ailib_sc, ailib_sc.testing):
        for name in module.__all__:
            qualname = f"{module.__name__}.{name}"
            if qualname not in documented:
                missing.append(qualname)
                continue
            obj = getattr(module, name)
            if not isinstance(obj, type):
                continue
            # Public methods and properties a class defines itself (members
            # are listed explicitly in the reference, to keep a reading order).
            for attr, value in vars(obj).items():
                if attr.startswith("_") or not isinstance(
                    value, (types.FunctionType, property, classmethod, staticmethod)
                ):
                    continue
                if f"{qualname}.{attr}" not in documented:
                    missing.append(f"{qualname}.{attr}")
    if missing:
        logging.getLogger(__name__).warning(
            "public names missing from docs/reference.md: %s", ", ".join(missing)
        )


def _write_provider_table(app):
    """Render the provider table from the registry (docs/providers.md includes it)."""
    import pathlib
    import sys

    here = pathlib.Path(__file__).parent
    sys.path.insert(0, str(here))
    try:
        from _providers_table import render
    finally:
        sys.path.remove(str(here))
    out = here / "_generated" / "providers-table.md"
    out.parent.mkdir(exist_ok=True)
    text = render()
    if not out.exists() or out.read_text() != text:
        out.write_text(text)


def setup(app):
    app.connect("builder-inited", _write_provider_table)
    # Before napoleon (priority 500), which would otherwise see the broken role.
    app.connect("autodoc-process-signature", _struct_defaults)
    app.connect("env-check-consistency", _check_public_names)
