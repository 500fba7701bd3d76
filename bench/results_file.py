"""bench/results.md holds one "## ..." section per benchmark script; each script rewrites only its own."""
from __future__ import annotations

from pathlib import Path


def replace_section(results_md: Path, section: str, md: str) -> None:
    """Put `md` (which starts with the `section` heading) in place of that section, or append it."""
    text = results_md.read_text(encoding="utf-8") if results_md.exists() else "# GlassGPT benchmarks\n\n"
    start = text.find(section)
    if start >= 0:
        nxt = text.find("\n## ", start + len(section))
        text = text[:start] + md.rstrip() + "\n" + ("\n" + text[nxt + 1:] if nxt >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + md.rstrip() + "\n"
    results_md.write_text(text, encoding="utf-8")
