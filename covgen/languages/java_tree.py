"""tree-sitter-java, the way covgen's Java prompt and writer read source: bytes, nodes, their text.

tree-sitter reads every Java version (records, text blocks, switch expressions) and gives byte
positions, which the writer needs to rename exactly the nodes it means.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["TYPE_DECLARATIONS", "parse", "text_of", "walk"]

#: Node types that declare a type.
TYPE_DECLARATIONS = frozenset({"class_declaration", "interface_declaration", "enum_declaration", "record_declaration",
                               "annotation_type_declaration"})


def parse(source: str) -> tuple[bytes, Any]:
    """The UTF-8 bytes of `source` and the root node of its tree (positions are byte offsets into them)."""
    import tree_sitter
    import tree_sitter_java

    data = source.encode("utf-8")
    return data, tree_sitter.Parser(tree_sitter.Language(tree_sitter_java.language())).parse(data).root_node


def text_of(data: bytes, node: Any) -> str:
    """The source text of `node`; empty for no node."""
    return data[node.start_byte : node.end_byte].decode("utf-8", "replace") if node is not None else ""


def walk(node: Any) -> Iterator[Any]:
    """`node` and every node below it, parents before children, in source order."""
    yield node
    for child in node.children:
        yield from walk(child)
