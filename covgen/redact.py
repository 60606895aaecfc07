"""Replace secrets in prompt context with placeholders before anything leaves the machine.

Patterns for the credentials that turn up in source: private keys, cloud and VCS tokens, JWTs,
passwords in connection strings, and values assigned to names that say they are secret. The
placeholder keeps the kind (``<redacted:aws-access-key>``) so the model still sees the shape.
"""

from __future__ import annotations

import re

__all__ = ["redact"]

_PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("private-key", re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----", re.S), "{}"),
    ("aws-access-key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "{}"),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})\b"), "{}"),
    ("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"), "{}"),
    ("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"), "{}"),
    ("api-key", re.compile(r"\bsk-(?:proj-|live-|test-)?[A-Za-z0-9_\-]{20,}\b"), "{}"),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\b"), "{}"),
    # scheme://user:password@host — keep the user and host, hide the password.
    ("password", re.compile(r"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@'\"]+:)[^\s@/'\"]+(?=@)"), "\\g<keep>{}"),
    # password = "…", API_TOKEN: '…', secret_key="…"
    ("secret", re.compile(
        r"(?P<keep>\b[\w.\-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|auth)[\w.\-]*"
        r"[\"']?\s*[:=]\s*(?P<quote>[\"']))(?!<redacted)[^\"'\n]{4,}(?P=quote)", re.I), "\\g<keep>{}\\g<quote>"),
)


def redact(text: str) -> str:
    """Return `text` with every secret the patterns know replaced by ``<redacted:KIND>``."""
    for kind, pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement.format(f"<redacted:{kind}>"), text)
    return text
