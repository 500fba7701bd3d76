"""What the figures say, in English and Chinese.

Each module that draws text declares it once, in a table made by `table(name, {key: (en, zh)})`,
with the same {placeholders} in both languages (a literal brace is doubled), and reads it back as `W("key", n=3)`. The
language is the request's: the page's event wiring (app.py) runs each handler inside
`speaking(lang)`; scripts, the API and tests get English unless they ask. tests/test_words.py
checks every table (both languages, same placeholders, Chinese that is Chinese).

Terms, kept the same everywhere: 词元 (token), 提示词 (prompt), 注意力头 (attention head),
残差流 (residual stream), logit 透镜 (logit lens), 嵌入向量 (embedding), 神经元 (neuron),
查询/键/值 (query/key/value), 注意力汇点 (attention sink; 汇点 for short), 消融 (ablation).
"""
from __future__ import annotations

import contextvars
import string
from contextlib import contextmanager

LANGUAGES = ("en", "zh")
_LANG = contextvars.ContextVar("glassgpt_language", default="en")


def language() -> str:
    """The language figures are drawn in now: "en" or "zh"."""
    return _LANG.get()


@contextmanager
def speaking(lang: str):
    """Draw in `lang` ("en" or "zh") inside this block."""
    if lang not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, got {lang!r}")
    token = _LANG.set(lang)
    try:
        yield
    finally:
        _LANG.reset(token)


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


class Words:
    """One module's texts: key -> (English, Chinese)."""

    def __init__(self, name: str, entries: dict[str, tuple[str, str]]):
        self.name, self.entries = name, entries

    def __call__(self, key: str, **values) -> str:
        en, zh = self.entries[key]
        text = zh if _LANG.get() == "zh" else en
        return text.format(**values)

    def both(self, key: str, **values) -> tuple[str, str]:
        """The text in both languages (for HTML that carries both and lets the page pick)."""
        en, zh = self.entries[key]
        return en.format(**values), zh.format(**values)


TABLES: dict[str, Words] = {}


def table(name: str, entries: dict[str, tuple[str, str]]) -> Words:
    words = Words(name, entries)
    TABLES[name] = words
    return words


def both_html(en: str, zh: str, tag: str = "span") -> str:
    """Already-escaped HTML in both languages; the page's CSS shows the one it speaks."""
    return f'<{tag} class="gg-en">{en}</{tag}><{tag} class="gg-zh">{zh}</{tag}>'
