"""``noa report``: a cross-domain summary of the registry, Markdown plus pictures in one folder.

:mod:`.collect` reads the registry into plain data, :mod:`.plots` draws the alignment matrices
and transfer curves, :mod:`.markdown` writes ``report.md``. See docs/report.md.
"""
