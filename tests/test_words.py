"""Every text table: both languages, the same placeholders, Chinese that reads as Chinese."""
from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import viz
from viz import words

# Import every viz module, so that every table is registered.
for info in pkgutil.walk_packages(viz.__path__, "viz."):
    importlib.import_module(info.name)

HAN = re.compile(r"[\u4e00-\u9fff]")


def all_entries():
    return [(name, key, en, zh) for name, t in sorted(words.TABLES.items()) for key, (en, zh) in t.entries.items()]


def test_the_figures_have_tables():
    assert len(words.TABLES) >= 1 and all_entries()


@pytest.mark.parametrize("name,key,en,zh", all_entries(), ids=lambda v: v if isinstance(v, str) and len(v) < 40 else "")
def test_entry_is_translated(name, key, en, zh):
    assert en.strip() and zh.strip(), f"{name}.{key} is empty in one language"
    assert words.placeholders(en) == words.placeholders(zh), f"{name}.{key}: placeholders differ"
    # A Chinese text holds Chinese characters unless it is only notation (numbers, symbols, names).
    latin = re.sub(r"\{[^}]*\}|<[^>]*>|&[#\w]+;", "", zh)
    if re.search(r"[A-Za-z]{3,}", latin) and not HAN.search(zh):
        pytest.fail(f"{name}.{key}: the Chinese text has no Chinese: {zh!r}")


def test_speaking_switches_and_restores():
    t = words.table("test.words", {"hello": ("Hello {name}", "你好 {name}")})
    assert t("hello", name="A") == "Hello A"
    with words.speaking("zh"):
        assert t("hello", name="A") == "你好 A"
        assert words.language() == "zh"
    assert words.language() == "en"
    with pytest.raises(ValueError):
        with words.speaking("fr"):
            pass
    del words.TABLES["test.words"]
