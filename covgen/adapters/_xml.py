"""The one way covgen reads XML: streaming, no entities, no DTD, no network.

Coverage reports come from CI artifacts that anyone who can open a pull request may shape, so
they are treated as hostile. lxml before 6.1 resolved external entities in ``iterparse`` by
default (CVE-2026-41066); we pass every safe option explicitly and, before lxml sees a byte,
refuse any document that declares entities at all. No coverage tool writes entity declarations.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from lxml import etree

from covgen.errors import ReportError

__all__ = ["iter_elements", "read_root_tag", "drop_finished", "root_start_tag"]

#: A prolog (everything before the root element) longer than this is refused: real reports
#: have a line or two of declarations, and a huge DOCTYPE is an attack, not a report.
_PROLOG_LIMIT = 1 << 20
_COMMENT = re.compile(rb"<!--.*?-->", re.DOTALL)
_ROOT_START = re.compile(rb"<([A-Za-z_][\w.:-]*)")


def read_root_tag(path: Path) -> str:
    """Return the root element's name, refusing entity declarations in the prolog."""
    with path.open("rb") as stream:
        head = stream.read(_PROLOG_LIMIT)
    prolog = _COMMENT.sub(b"", head)
    match = _ROOT_START.search(prolog)
    if match is None:
        if len(head) >= _PROLOG_LIMIT:
            raise ReportError(f"{path}: XML prolog longer than 1 MiB; refusing to read it", slug="hostile-xml")
        raise ReportError(f"{path}: no XML root element (empty or truncated file)", slug="malformed")
    if b"<!ENTITY" in prolog[: match.start()]:
        raise ReportError(
            f"{path}: the document declares XML entities; coverage reports never do, so it is refused",
            slug="hostile-xml",
        )
    return match.group(1).decode("ascii", "replace")


def root_start_tag(head: bytes) -> bytes:
    """Return the root element's start tag (up to 400 bytes) from a file's first bytes, for sniffing."""
    match = _ROOT_START.search(_COMMENT.sub(b"", head))
    return head[match.start() : match.start() + 400] if match else b""


def iter_elements(path: Path, tags: Sequence[str]) -> Iterator[etree._Element]:
    """Yield each element named in `tags` once it is complete, streaming the file.

    The caller must call :func:`drop_finished` on elements it is done with; that keeps memory
    bounded by one element's subtree instead of the whole report.
    """
    read_root_tag(path)
    context = etree.iterparse(
        str(path),
        events=("end",),
        tag=list(tags),
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        for _event, element in context:
            yield element
    except etree.XMLSyntaxError as err:
        raise ReportError(f"{path}: not well-formed XML ({_first_line(err)})", slug="malformed") from err


def drop_finished(element: etree._Element) -> None:
    """Free `element` and the already-processed siblings before it."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__
