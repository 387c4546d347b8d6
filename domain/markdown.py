"""Text for the Temporal Web UI's Markdown fields (summaries, details)."""


def escape_markdown(text: str) -> str:
    """Escape what the Web UI's Markdown renderer would misread ($…$ is math there)."""
    return text.replace("$", "\\$")
