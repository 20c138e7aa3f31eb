"""Element names without their namespace.

The appliance's namespace differs by product and age (bomgar.com,
beyondtrust.com, none), so btic matches elements by local name. A report of
100,000 sessions has tens of millions of elements but a few dozen distinct
tags, so each tag's local name is computed once and looked up after that.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from lxml import etree

#: Qualified tag -> local name. Bounded: a hostile document with millions of
#: distinct names is still parsed, just without the cache's help.
LOCAL_NAMES: dict[object, str] = {}
_CACHE_LIMIT = 4096


def local(tag: object) -> str:
    """An element's name without its namespace ("" for comments, processing
    instructions and entity references, whose ``tag`` is not a string)."""
    name = LOCAL_NAMES.get(tag)
    if name is None:
        # Interned, so comparing it with a literal name is an identity check.
        name = sys.intern(tag[tag.rfind("}") + 1 :]) if isinstance(tag, str) else ""
        if len(LOCAL_NAMES) < _CACHE_LIMIT:
            LOCAL_NAMES[tag] = name
    return name


def children(element: etree._Element) -> Iterator[tuple[str, etree._Element]]:
    """(local name, element) of each child element; comments and processing
    instructions are left out."""
    for child in element:
        name = local(child.tag)
        if name:
            yield name, child
