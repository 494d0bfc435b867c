"""Render the provider table of ``docs/providers.md`` from the registry.

``conf.py`` writes it to ``docs/_generated/providers-table.md`` at every build,
so the table cannot drift from the rows; ``tests/test_docs_examples.py`` runs
it too.
"""

from __future__ import annotations

from ailib_sc import Provider

_FAMILY_PAGES = {
    "openai_chat": "[OpenAI](families/openai-compatible.md)",
    "anthropic": "[Anthropic](families/anthropic.md)",
    "gemini": "[Gemini](families/gemini.md)",
    "cohere": "[Cohere](families/cohere.md)",
    "ollama": "[Ollama](families/ollama.md)",
}


def _yes(flag: bool) -> str:
    return "yes" if flag else "—"


def render() -> str:
    """The Markdown table: one row per `Provider` member, features as columns."""
    head = (
        "| provider | name | family | base URL | key env (first found wins) "
        "| vision | audio | tools | reasoning | list models |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for member in Provider:
        c = member.config
        caps = c.capabilities
        family = _FAMILY_PAGES[c.family]
        if c.id.startswith("azure"):
            family = "[OpenAI (Azure)](families/azure.md)"
        base = f"`{c.base_url}`" if c.base_url else (
            f"`$AZURE_OPENAI_ENDPOINT{c.endpoint_path}`"
        )
        keys = ", ".join(f"`{k}`" for k in c.key_env)
        if c.key_optional:
            keys += " (optional)"
        rows.append(
            f"| `{c.id}` | {c.name} | {family} | {base} | {keys} | "
            f"{_yes(caps.vision)} | {_yes(caps.audio)} | {_yes(caps.tools)} | "
            f"{_yes(caps.reasoning)} | {_yes(caps.list_models)} |"
        )
    return head + "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(render(), end="")
