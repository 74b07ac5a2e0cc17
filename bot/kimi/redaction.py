"""API keys never leave the Kimi client: anything that looks like one is cut out of texts."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Moonshot keys look like "sk-" + 48 alphanumerics; gateways use other shapes, which is why the
# client also redacts its own key by value.
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}")
_REDACTED = "sk-***"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove the given secrets and anything that looks like an API key from text."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return _KEY_LIKE.sub(_REDACTED, text)
