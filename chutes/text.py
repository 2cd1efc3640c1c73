"""What counts as one line of text in a generated file (a Dockerfile instruction, a README cell)."""

from __future__ import annotations

import re

# Control characters but tab, and the Unicode line and paragraph separators: editors, terminals and
# other parsers break lines at some of them (U+0085, U+2028, VT, FF) or act on them (ESC).
NOT_ONE_LINE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def is_one_line(value: str) -> bool:
    """Whether ``value`` holds no line break and no control character other than tab."""
    return NOT_ONE_LINE.search(value) is None
