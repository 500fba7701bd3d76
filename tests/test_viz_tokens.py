"""Token chips: one escaped chip per token, hex bytes for partial characters, marks for control,
generated and focus tokens. Parsed with html.parser, so the tests see what a browser would.

Chips depend only on the tokens, so the traces come from the tiny random-weight model
(tests/tiny_model.py), which has the default model's tokenizer: same ids, pieces and labels."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from viz.tokens import token_chips_html

HOSTILE = "你好😀 <img src=x onerror=alert(1)></div><script>\" onmouseover=\"x\n\t<|im_start|>"


class Chips(HTMLParser):
    """Collects every tag with its attributes, and the text of each chip's label and id spans."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.chips, self._span = [], [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "button":
            self.chips.append({"attrs": a, "label": "", "id": "", "bytes": ""})
        elif tag == "span" and self.chips:
            part = [c for c in (a.get("class") or "").split() if c in ("gg-chip-label", "gg-chip-id", "gg-chip-bytes")]
            self._span = part[0] if part else None
            self.chips[-1].setdefault("span_classes", []).append((a.get("class") or "").split())

    def handle_endtag(self, tag):
        if tag == "span":
            self._span = None

    def handle_data(self, data):
        if self._span and self.chips:
            self.chips[-1][{"gg-chip-label": "label", "gg-chip-id": "id", "gg-chip-bytes": "bytes"}[self._span]] += data


def parse(s: str) -> Chips:
    p = Chips()
    p.feed(s)
    p.close()
    return p


@pytest.fixture(scope="module")
def hostile(tiny_lm):
    return tiny_lm.trace(HOSTILE)


def test_one_chip_per_token_with_id_and_position(tiny_trace):
    p = parse(token_chips_html(tiny_trace, 2))
    assert len(p.chips) == tiny_trace.T
    assert [c["attrs"]["data-pos"] for c in p.chips] == [str(i) for i in range(tiny_trace.T)]
    assert [int(c["id"].split()[0]) for c in p.chips] == list(tiny_trace.token_ids)
    assert [c["label"] for c in p.chips] == [pc.label for pc in tiny_trace.pieces]
    assert all(c["attrs"]["type"] == "button" and "gg-chip" in c["attrs"]["class"].split() for c in p.chips)
    # the repeated " cat" keeps two chips, with leading spaces visible
    assert [c["label"] for c in p.chips].count("·cat") == 2


def test_focus_chip_is_the_only_highlighted_one(tiny_trace):
    p = parse(token_chips_html(tiny_trace, 4))
    focused = [i for i, c in enumerate(p.chips) if "gg-chip-focus" in c["attrs"]["class"].split()]
    assert focused == [4]
    assert p.chips[4]["attrs"]["aria-pressed"] == "true"


def test_hover_names_position_id_bytes_and_text(tiny_trace):
    title = parse(token_chips_html(tiny_trace, 0)).chips[1]["attrs"]["title"]
    assert "position 1" in title and f"id {tiny_trace.token_ids[1]}" in title
    assert "20 63 61 74" in title                       # " cat" in hex
    assert "' cat'" in title


def test_summary_counts_tokens_characters_bytes(tiny_trace):
    out = token_chips_html(tiny_trace, 0)
    n_chars, n_bytes = len(tiny_trace.prompt), len(tiny_trace.prompt.encode())
    assert f"{tiny_trace.T} tokens" in out
    assert f"{n_chars} characters" in out and f"{n_bytes} bytes" in out


def test_partial_characters_show_hex_bytes_never_replacement_glyph(hostile):
    out = token_chips_html(hostile, 0)
    assert "\ufffd" not in out
    p = parse(out)
    partial = [(c, pc) for c, pc in zip(p.chips, hostile.pieces) if pc.is_partial]
    assert partial, "the CJK/emoji prompt should contain tokens that are part of a character"
    for chip, pc in partial:      # the character each piece helps spell, its bytes beside it
        assert re.fullmatch(r"\S+ \(\d/\d\)", chip["label"]), chip["label"]
        assert chip["label"][0] in "你好😀", chip["label"]
        assert chip["bytes"] == " ".join(f"{b:02X}" for b in pc.raw)
        assert "gg-chip-partial" in chip["attrs"]["class"]
    # UTF-8 byte count: 你好 is 6 bytes, 😀 is 4
    assert f"{len(HOSTILE.encode())} bytes" in out


def test_hostile_text_is_escaped(hostile):
    out = token_chips_html(hostile, 0)
    assert "<img" not in out and "<script" not in out and "</div><script>" not in out
    p = parse(out)
    assert {t for t, _ in p.tags} <= {"div", "button", "span"}
    allowed = {"class", "type", "data-pos", "title", "aria-pressed", "aria-hidden"}
    for tag, attrs in p.tags:
        assert set(attrs) <= allowed, (tag, attrs)        # no onmouseover / onerror smuggled in
    labels = "".join(c["label"] for c in p.chips)
    assert "img" in labels and "onmouseover" in labels    # the text is still shown, as text


def test_whitespace_is_visible(hostile):
    labels = [c["label"] for c in parse(token_chips_html(hostile, 0)).chips]
    assert "↵" in labels and "→" in labels and any(l.startswith("·") for l in labels)


def test_control_tokens_differ_from_the_same_text_typed(tiny_lm, hostile):
    chat = tiny_lm.trace("<|im_start|>user\nhi<|im_end|>", parse_special=True)
    chips = parse(token_chips_html(chat, 0)).chips
    control = [c for c, pc in zip(chips, chat.pieces) if pc.is_special]
    assert control and all("gg-chip-control" in c["attrs"]["class"] and "control token" in c["attrs"]["title"]
                           for c in control)
    assert all("gg-chip-control" not in c["attrs"]["class"] for c, pc in zip(chips, chat.pieces) if not pc.is_special)
    typed = parse(token_chips_html(hostile, 0)).chips           # "<|im_start|>" typed as plain text
    assert not any("gg-chip-control" in c["attrs"]["class"] for c in typed)


def test_generated_tokens_are_styled_apart(tiny_lm, tiny_trace):
    grown = tiny_lm.step(tiny_trace, tiny_trace.token_ids[1])
    out = token_chips_html(grown, grown.T - 1)
    chips = parse(out).chips
    assert ["gg-chip-generated" in c["attrs"]["class"] for c in chips] == [False] * tiny_trace.T + [True]
    assert all("gg-chip-prompt" in c["attrs"]["class"] for c in chips[:-1])
    assert f"({tiny_trace.T} prompt + 1 generated)" in out


@pytest.mark.parametrize("focus", [-1, 11, 99, True, 1.0, None])
def test_bad_focus_is_refused(tiny_trace, focus):
    with pytest.raises(ValueError, match="position"):
        token_chips_html(tiny_trace, focus)


def test_a_chinese_prompt_shows_each_character_over_its_byte_chips(lm):
    tr = lm.trace("我爱北京天安门")
    p = parse(token_chips_html(tr, 0))
    labels = [c["label"] for c in p.chips]
    assert labels[:5] == ["我 (1/2)", "我 (2/2)", "爱 (1/3)", "爱 (2/3)", "爱 (3/3)"]
    assert "".join(label[0] for label in labels if label.endswith("(1/2)") or label.endswith("(1/3)")) == "我爱北京天安门"
    assert [c["bytes"] for c in p.chips[:2]] == ["E6 88", "91"]


def test_a_character_still_waiting_for_its_bytes_shows_them_in_hex(lm):
    ids = lm.tokenize("我")[:1]                     # the first of its two tokens only
    (piece,) = lm.tokenizer.pieces(ids)
    assert piece.is_partial and piece.spells == "" and piece.label == "<E6 88>"


def test_the_summary_says_what_chinese_costs(lm):
    from viz.tokens import token_summary
    line = token_summary(lm.trace("我爱北京天安门"))
    assert "7 Chinese characters in 15 tokens (2.1 per character)" in line
    assert "Chinese" not in token_summary(lm.trace("plain English"))


def test_the_language_note_measures_both_sentences(lm):
    from viz import language_note as note
    from zh_text import stray_latin
    import re
    costs = {lang: note.sentence_cost(lm.trace(text), lang) for lang, text in note.SAMPLES.items()}
    en, zh = costs["en"], costs["zh"]
    assert zh.n_units == 12 and en.n_units == len(note.SAMPLES["en"].split())
    assert zh.n_tokens / zh.n_units > 1.5 > en.n_tokens / en.n_units       # Chinese costs more tokens here
    probs = note.next_token_probs(lm.trace(note.SAMPLES["zh"]))
    assert len(probs) == zh.n_tokens - 1 and 0 < zh.mean_next_prob == probs.mean() < 1
    html_text = note.language_note_html(en, zh)
    assert f"{zh.n_tokens} in Chinese" in html_text and f"中文用 {zh.n_tokens} 个" in html_text
    chinese = re.sub(r'<p class="gg-en">.*?</p>|<q[^>]*>.*?</q>|<[^>]+>', " ", html_text)
    assert stray_latin(chinese) == []


# ---- Chinese -------------------------------------------------------------------------------------------
def test_chips_speak_chinese(tiny_lm, tiny_trace, hostile):
    """Under speaking("zh") each chip's hover (title) and its control mark are Chinese; what stays Latin
    is the token's own text and bytes. The label and bytes spans carry gg-token, the class the
    browser walk (tests/browser/test_chinese_walk.py) treats as the token's own text."""
    from zh_text import stray_latin
    from viz.words import speaking

    chat = tiny_lm.trace("<|im_start|>user\nhi<|im_end|>", parse_special=True)
    grown = tiny_lm.step(tiny_trace, tiny_trace.token_ids[1])
    traces = (tiny_trace, hostile, chat, grown)
    with speaking("zh"):
        pages = [token_chips_html(tr, 0) for tr in traces]
    own = {w for tr in traces for p in tr.pieces
           for w in re.findall(r"[A-Za-z][A-Za-z0-9_\-·.]*[A-Za-z0-9]|[A-Za-z]+", f"{p.text} {p.label} {p.raw.hex(' ').upper()}")}
    seen = set()
    for tr, out in zip(traces, pages):
        chips = parse(out).chips
        assert len(chips) == tr.T
        for chip, pc in zip(chips, tr.pieces):
            title = chip["attrs"]["title"]
            assert title.startswith("位置 ") and "字节：" in title, title
            assert stray_latin(title, own) == [], title
            assert stray_latin(chip["id"], own) == [], chip["id"]
            for classes in chip["span_classes"]:          # the token's own text is marked as such
                if "gg-chip-label" in classes or "gg-chip-bytes" in classes:
                    assert "gg-token" in classes, classes
            seen.update(k for k, word in (("partial", "多字节字符"), ("spells", "所属字符："), ("control", "控制词元"),
                                          ("generated", "由模型生成"), ("prompt", "来自提示词")) if word in title)
            if pc.is_special:
                assert chip["id"].endswith(" · 控制")
        # The summary and the legend carry both languages; the Chinese half is Chinese.
        zh = " ".join(re.findall(r'<span class="gg-zh">(.*?)</span>', out))
        assert "个词元" in zh and stray_latin(zh, ("E4", "B8")) == []
    assert seen == {"partial", "spells", "control", "generated", "prompt"}      # every kind of hover was drawn
    # English is the default again outside the block.
    assert parse(token_chips_html(chat, 0)).chips[0]["attrs"]["title"].startswith("position 0 · id ")
