"""Cell counts from yosys' text `stat` report, shared by the XC7S15 fit check and the iCE40 report.
(yosys 0.23 `stat -json` can emit invalid JSON for parameterized module names, so the text is read.)"""
import re


def cell_counts(text, after=None):
    """{cell type: count} of the last "Number of cells:" block, or of the first one after the
    marker `after` (e.g. '=== design hierarchy ===' for the whole design's totals)."""
    part = text[text.rindex(after):] if after else text
    part = part[part.index("Number of cells:"):] if after else part[part.rindex("Number of cells:"):]
    cells = {}
    for line in part.splitlines()[1:]:
        m = re.match(r"^\s+([A-Za-z0-9_$]+)\s+(\d+)$", line)
        if not m:
            if line.strip():
                break
            continue
        cells[m.group(1)] = int(m.group(2))
    return cells
