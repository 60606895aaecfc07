"""Replace secrets with placeholders before anything leaves the machine or reaches the audit log.

Two rulesets run over every text, in this order:

* covgen's own patterns: private keys (the whole multi-line block), passwords in connection
  strings, and the formats detect-secrets misses or matches too narrowly — Stripe keys of any
  length, GitLab and HuggingFace tokens, Azure ``AccountKey=``/``SharedAccessKey=`` values of
  any length, and long random tokens standing alone, unquoted (an AWS secret access key in a
  comment, a token in a pytest diff).
* detect-secrets (Yelp), line by line: its plugins (cloud, VCS and SaaS token formats, JWTs,
  basic-auth URLs, values of secret-named keys) with its false-positive filters (UUIDs,
  sequential strings, templated values, indirect references), and its entropy checks for quoted
  strings at its own default limits (Base64 above 4.5 bits per character, hex above 3.0).

Ordinary code is left alone: of the 269,000 lines of httpx, click, rich, pydantic, requests,
coverage.py, libcst and pytest, 35 change — example credentials in docs and tests
(``user:pass@host``, ``password='password1'``), five hex digests, a base64 sample, a long name.

A placeholder keeps the kind (``<redacted:aws-access-key>``) so the model still sees the shape.
Redaction is deterministic and idempotent, so a prompt redacted twice is byte-identical and the
server's prefix cache still serves it. detect-secrets is imported on first use: commands that
build no prompt never pay for it.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from typing import Any

__all__ = ["redact", "redact_json"]

_Replacement = str | Callable[[re.Match[str]], str]


def _placeholder(kind: str) -> str:
    return f"<redacted:{kind}>"


def _entropy(text: str) -> float:
    """Shannon entropy in bits per character, as detect-secrets computes it."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


#: detect-secrets' Base64HighEntropyString default; random 40-character keys score 4.5-5.3.
_BASE64_LIMIT = 4.5
_HEX_LIMIT = 3.0


def _bare_token(match: re.Match[str]) -> str:
    """A key standing alone, unquoted: an AWS secret access key, a token, a hex key, key material.

    pytest prints values unquoted (``+ q8Zr2L…`` in a diff, captured output), and a key can sit
    in a comment. Long names are also long runs of these characters; a key mixes cases and
    digits and scores like random data (the same entropy limits as quoted strings). In 5.3
    million lines of Python (the standard library, pip, httpx, rich, pydantic, coverage.py…)
    this flags about 340 tokens: embedded certificates and keys, commit hashes, a few
    generated names.
    """
    token = match.group()
    body = token.rstrip("=")
    if len(body) >= 32 and re.fullmatch(r"[0-9a-fA-F]+", body):
        if re.search(r"\d", body) and re.search(r"[a-fA-F]", body) and _entropy(body) > _HEX_LIMIT:
            return _placeholder("high-entropy-hex")
        return token
    if not (re.search(r"\d", body) and re.search(r"[a-z]", body) and re.search(r"[A-Z]", body)) or _entropy(body) <= _BASE64_LIMIT:
        return token
    if any(run in body for run in ("ABCDEFGHIJ", "abcdefghij", "0123456789")):
        return token  # an alphabet spelt out, not a key
    return _placeholder("aws-secret-key" if len(body) == 40 and re.fullmatch(r"[A-Za-z0-9+/]+", body) else "high-entropy-string")


_OWN: tuple[tuple[str, re.Pattern[str], _Replacement], ...] = (
    ("private-key", re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----", re.S), "{}"),
    ("aws-access-key", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[0-9A-Z]{16}\b"), "{}"),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})\b"), "{}"),
    ("gitlab-token", re.compile(r"\b(?:glpat|gldt|glft|glsoat|glrt|glcbt|glptt|glagent|gloas|glimt)-[A-Za-z0-9_\-]{20,}"), "{}"),
    ("huggingface-token", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"), "{}"),
    ("stripe-key", re.compile(r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{10,}\b"), "{}"),
    ("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"), "{}"),
    ("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"), "{}"),
    ("api-key", re.compile(r"\bsk-(?:proj-|live-|test-|ant-)?[A-Za-z0-9_\-]{20,}\b"), "{}"),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\b"), "{}"),
    # Azure storage and service-bus connection strings: AccountKey=…; SharedAccessKey=…; sig=…
    ("azure-key", re.compile(r"(?P<keep>\b(?:AccountKey|SharedAccessKey|SharedAccessSignature|sig)=)(?!<redacted)[A-Za-z0-9+/%=\-]{16,}", re.I),
     r"\g<keep>{}"),
    # scheme://user:password@host — keep the user and host, hide the password.
    ("password", re.compile(r"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@'\"]+:)(?!<redacted)[^\s@/'\"]+(?=@)"), r"\g<keep>{}"),
    # password = "…", API_TOKEN: '…', secret_key="…"
    ("secret", re.compile(
        r"(?P<keep>\b[\w.\-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|auth(?!or))[\w.\-]*"
        r"[\"']?\s*[:=]\s*(?P<quote>[\"']))(?!<redacted)[^\"'\n]{4,}(?P=quote)", re.I), r"\g<keep>{}\g<quote>"),
    # A key anywhere, assigned to a named variable or not, quoted or not (an AWS secret access
    # key in a comment, a token in a pytest diff). Not inside URLs and paths: no . : / before.
    ("token", re.compile(r"(?<![A-Za-z0-9+/=_\-.:~%@<])[A-Za-z0-9+/_\-]{24,}={0,2}(?![A-Za-z0-9+/=_\-~%@.])"), _bare_token),
)

#: detect-secrets' secret types, as placeholder kinds; any other type is spelt in lowercase-dashes.
_KINDS = {
    "Secret Keyword": "secret",
    "Basic Auth Credentials": "password",
    "Base64 High Entropy String": "high-entropy-string",
    "Hex High Entropy String": "high-entropy-hex",
    "JSON Web Token": "jwt",
}
_ENTROPY_LIMITS = {"Base64 High Entropy String": _BASE64_LIMIT, "Hex High Entropy String": _HEX_LIMIT}
#: Not secrets: a public IP address in code is configuration the model may need.
_SKIPPED_PLUGINS = frozenset({"IPPublicDetector"})

# detect-secrets keeps its configuration in process-wide settings; one scan at a time.
_LOCK = threading.Lock()
_LINE_CACHE: dict[str, tuple[tuple[str, str], ...]] = {}
_LINE_CACHE_SIZE = 200_000


# Requests resend a conversation's earlier messages; each is redacted once.
@lru_cache(maxsize=1024)
def redact(text: str) -> str:
    """Return `text` with every secret the rulesets know replaced by ``<redacted:KIND>``."""
    for kind, pattern, replacement in _OWN:
        text = pattern.sub(replacement if callable(replacement) else replacement.format(_placeholder(kind)), text)
    return _redact_lines(text)


def redact_json(value: Any) -> Any:
    """Redact every string inside a JSON-like value (a request body, an audit-log entry)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_json(item) for item in value]
    return value


def _redact_lines(text: str) -> str:
    lines = text.split("\n")
    findings = _scan(lines)
    out = []
    for line in lines:
        for secret, kind in findings.get(line, ()):
            line = _replace(line, secret, _placeholder(kind))
        out.append(line)
    return "\n".join(out)


def _replace(line: str, secret: str, placeholder: str) -> str:
    if len(secret) >= 8:
        return line.replace(secret, placeholder)
    # A short value ("bar") is also a word elsewhere on its line ("bar.com"): only where it
    # stands as a value, quoted or as a URL's password, is it the secret.
    return re.sub(rf"(?<=[\"':]){re.escape(secret)}(?=[\"'@])", lambda _: placeholder, line)


def _scan(lines: list[str]) -> dict[str, tuple[tuple[str, str], ...]]:
    """detect-secrets' findings per distinct line, as (secret, kind); cached across calls."""
    todo = [line for line in dict.fromkeys(lines) if line not in _LINE_CACHE and line.strip()]
    if todo:
        from detect_secrets.core.scan import scan_line
        from detect_secrets.settings import transient_settings

        with _LOCK, transient_settings(_detect_secrets_config()):
            if len(_LINE_CACHE) + len(todo) > _LINE_CACHE_SIZE:
                _LINE_CACHE.clear()
            for line in todo:
                found = {}
                for secret in scan_line(line):
                    value = secret.secret_value
                    if value and "<redacted:" not in value and _kept(secret.type, value, line):
                        found[value] = _KINDS.get(secret.type) or re.sub(r"[^a-z0-9]+", "-", secret.type.lower()).strip("-")
                # Longest first, so a secret that contains another is replaced whole.
                _LINE_CACHE[line] = tuple(sorted(found.items(), key=lambda item: -len(item[0])))
    return {line: _LINE_CACHE.get(line, ()) for line in lines}


def _kept(secret_type: str, value: str, line: str) -> bool:
    limit = _ENTROPY_LIMITS.get(secret_type)
    if limit is None:
        return True
    # scan_line, made for ad-hoc strings, also offers unquoted words when a line has no quoted
    # string, unfiltered by entropy; in code those are identifiers. Quoted and above the limit only.
    return (f'"{value}"' in line or f"'{value}'" in line) and _entropy(value) > limit


@lru_cache(maxsize=1)
def _detect_secrets_config() -> dict[str, Any]:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.settings import Settings

    plugins: list[dict[str, Any]] = []
    mapping: dict[str, type[Any]] = get_mapping_from_secret_type_to_class()
    for secret_type, plugin in sorted(mapping.items()):
        if plugin.__name__ in _SKIPPED_PLUGINS:
            continue
        entry: dict[str, Any] = {"name": plugin.__name__}
        if secret_type in _ENTROPY_LIMITS:
            entry["limit"] = _ENTROPY_LIMITS[secret_type]
        plugins.append(entry)
    # The default heuristic filters, named so that no earlier configuration in this process
    # counts; never the verification filter, which would send a secret to its provider to check.
    filters = [{"path": path} for path in sorted(Settings().filters) if path not in Settings.DEFAULT_FILTERS and "verification" not in path]
    return {"plugins_used": plugins, "filters_used": filters}
