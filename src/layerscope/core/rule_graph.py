"""The docs' rule graph, generated from ``snakemake --rulegraph``, never kept by hand.

Snakemake prints the graph as DOT with arbitrary node numbers and colours; this turns it
into a Mermaid flowchart with the rules' names as nodes and the edges sorted, so the same
workflow always gives the same text. It is pasted into ``docs/pipeline.md`` between two
markers, and ``tests/test_docs.py`` fails when the page and the workflow's rules disagree.
The graph is drawn for ``config/paper.yaml``, the config that runs every rule.

Usage: ``python -m layerscope.core.rule_graph docs/pipeline.md``
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from layerscope.core.atomic import write_text
from layerscope.core.errors import LayerscopeError

REPO = Path(__file__).resolve().parents[3]
CONFIG = "config/paper.yaml"
BEGIN = f"<!-- rulegraph: snakemake --rulegraph --configfile {CONFIG} -->\n"
END = "<!-- end of rulegraph -->\n"

_NODE = re.compile(r'^\s*(\d+)\[label = "([^"]+)"', re.MULTILINE)
_EDGE = re.compile(r"^\s*(\d+) -> (\d+)", re.MULTILINE)


def rulegraph_dot(config: str = CONFIG) -> str:
    """The workflow's rule graph as Snakemake prints it (DOT), for ``config``.

    Raises:
        LayerscopeError: Snakemake could not build the graph.
    """
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--rulegraph", "--configfile", config],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise LayerscopeError(f"snakemake --rulegraph failed: {run.stderr.strip().splitlines()[-1:]}")
    return run.stdout


def mermaid(dot: str) -> str:
    """A DOT rule graph as a Mermaid flowchart: nodes by rule name, edges sorted, in a fenced block."""
    names = dict(_NODE.findall(dot))
    edges = sorted({(names[a], names[b]) for a, b in _EDGE.findall(dot)})
    lines = ["```mermaid", "flowchart TB"]
    lines += [f"    {name}" for name in sorted(names.values())]
    lines += [f"    {a} --> {b}" for a, b in edges]
    return "\n".join(lines) + "\n```\n"


def rules_of(block: str) -> set[str]:
    """The rule names a Mermaid block of :func:`mermaid` draws."""
    return {line.split()[0] for line in block.splitlines() if line.startswith("    ")}


def pasted(page: str) -> str:
    """The rule graph block of a page (between its markers).

    Raises:
        LayerscopeError: the page has no rule graph markers.
    """
    if BEGIN not in page or END not in page:
        raise LayerscopeError("the page has no rule graph between '<!-- rulegraph: ... -->' markers")
    return page[page.index(BEGIN) + len(BEGIN) : page.index(END)]


def splice(page: str, block: str) -> str:
    """``page`` with its rule graph block replaced by ``block``."""
    pasted(page)
    return page[: page.index(BEGIN) + len(BEGIN)] + block + page[page.index(END) :]


if __name__ == "__main__":
    path = Path(sys.argv[1])
    write_text(path, splice(path.read_text(), mermaid(rulegraph_dot())))
