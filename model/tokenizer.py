"""Byte-level BPE tokenizer rebuilt from a GGUF file's own vocabulary, or from a Hugging Face
GPT-2 directory (vocab.json + merges.txt, or tokenizer.json).

From a GGUF it reproduces llama.cpp's tokenizer for `tokenizer.ggml.model = gpt2` with the `smollm`
pre-tokenizer: every numeric character is split off on its own, then the GPT-2 regex splits
the rest, then BPE merges run inside each piece. From a Hugging Face GPT-2 directory it is GPT-2's
own: the GPT-2 regex (byte-level, no prefix space), BPE merges, `<|endoftext|>` as the special and
end-of-sequence token, and no chat template. The `tokenizers` library does the BPE; this
module adds what a visualizer needs: exact bytes per token, printable labels, and the chat layout.

Depends only on the standard library and `tokenizers` (no torch, no UI code).
"""
from __future__ import annotations

import json
import operator
import re
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

from tokenizers import AddedToken, decoders, models, pre_tokenizers
from tokenizers import Tokenizer as _HFTokenizer

CONTROL_TOKEN_TYPE = 3  # llama.cpp's LLAMA_TOKEN_TYPE_CONTROL
_JSON_FORMAT = 1  # bump when the layout of to_json() changes, so stale caches are rebuilt
# Used only when the GGUF has no chat template to read the default system message from.
_FALLBACK_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table used by byte-level BPE vocabularies."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:  # unprintable bytes are moved to code points above 255
            table[b] = chr(256 + extra)
            extra += 1
    return table


_CHAR_TO_BYTE = {ch: b for b, ch in _bytes_to_unicode().items()}

# Visible stand-ins for whitespace in chip labels.
_VISIBLE = {" ": "·", "\n": "↵", "\t": "→"}


@dataclass(frozen=True)
class TokenPiece:
    id: int
    raw: bytes  # exact bytes this token stands for (control token: its text as UTF-8)
    text: str  # raw decoded as UTF-8 if valid on its own, else ""
    is_partial: bool  # raw alone is not valid UTF-8 (part of a multi-byte character)
    is_special: bool  # a control token such as <|im_start|>
    display: str  # printable label; never contains U+FFFD
    spells: str = ""  # for a partial token in a sequence: the character(s) its bytes belong to, e.g. "我 (1/2)"

    @property
    def label(self) -> str:
        """What a reader sees: the character a partial token helps spell when it is known (its
        bytes stay in `display`), else `display`."""
        return self.spells or self.display


def split_incomplete_utf8(raw: bytes) -> tuple[bytes, bytes]:
    """(complete, waiting): `waiting` is a trailing start of a multi-byte character whose
    remaining bytes have not arrived yet (at most 3 bytes); everything before it is `complete`."""
    for back in range(1, min(3, len(raw)) + 1):
        b = raw[-back]
        if b & 0xC0 == 0x80:            # a continuation byte: the character starts further back
            continue
        need = 2 if b & 0xE0 == 0xC0 else 3 if b & 0xF0 == 0xE0 else 4 if b & 0xF8 == 0xF0 else 1
        return (raw[:-back], raw[-back:]) if need > back else (raw, b"")
    return raw, b""


def _utf8_length(first: int) -> int:
    """Bytes of the UTF-8 character that starts with this byte (0: not a start byte)."""
    return 1 if first < 0x80 else 2 if first & 0xE0 == 0xC0 else 3 if first & 0xF0 == 0xE0 else \
        4 if first & 0xF8 == 0xF0 else 0


def spelled(raws: list[bytes], partial: list[bool]) -> list[str]:
    """For each partial token of a sequence, the characters its bytes belong to: "我 (1/2)" for the
    first of the two tokens that spell 我, "…我爱…" for a token holding the end of one character
    and the start of the next. "" where the bytes do not (yet) make whole characters, e.g. the
    start of a character whose other bytes have not been generated."""
    data = b"".join(raws)
    owner = [t for t, raw in enumerate(raws) for _ in raw]          # byte -> token index
    starts = [0]
    for raw in raws:
        starts.append(starts[-1] + len(raw))
    chars, i = [], 0                                                 # (label, first byte, end byte)
    while i < len(data):
        n = _utf8_length(data[i])
        try:
            ch = data[i:i + n].decode("utf-8") if n and i + n <= len(data) else None
        except UnicodeDecodeError:
            ch = None
        if ch is None:
            chars.append((None, i, i + 1))
            i += 1
            continue
        chars.append((_display(data[i:i + n]), i, i + n))
        i += n
    out = [""] * len(raws)
    c = 0
    for t, raw in enumerate(raws):
        lo, hi = starts[t], starts[t + 1]
        while c < len(chars) and chars[c][2] <= lo:
            c += 1
        if not partial[t] or not raw:
            continue
        mine = []
        j = c
        while j < len(chars) and chars[j][1] < hi:
            mine.append(chars[j])
            j += 1
        if not mine or any(label is None for label, _, _ in mine):
            continue
        if len(mine) == 1:
            _, a, b = mine[0]
            tokens = sorted({owner[k] for k in range(a, b)})
            out[t] = f"{mine[0][0]} ({tokens.index(t) + 1}/{len(tokens)})"
        else:
            head = "…" if mine[0][1] < lo else ""
            tail = "…" if mine[-1][2] > hi else ""
            out[t] = head + "".join(label for label, _, _ in mine) + tail
    return out


def _display(raw: bytes) -> str:
    """Printable label: whitespace as visible marks, invisible characters escaped, and bytes that
    are not whole UTF-8 characters shown in hex (never as a U+FFFD replacement glyph)."""
    # surrogateescape maps each undecodable byte b to U+DC00+b, so partial bytes stay recoverable.
    out, hex_run = [], []
    for ch in raw.decode("utf-8", errors="surrogateescape"):
        cp = ord(ch)
        if 0xDC80 <= cp <= 0xDCFF:
            hex_run.append(f"{cp - 0xDC00:02X}")
            continue
        if hex_run:
            out.append("<" + " ".join(hex_run) + ">")
            hex_run = []
        if ch in _VISIBLE:
            out.append(_VISIBLE[ch])
        elif cp < 0x100 and unicodedata.category(ch) == "Cc":
            out.append(f"\\x{cp:02x}")
        elif ch == "\ufffd" or unicodedata.category(ch) in ("Cc", "Cf", "Zs", "Zl", "Zp", "Co", "Cn"):
            # format chars (ZWJ, bidi marks), odd spaces and a literal U+FFFD would be invisible
            # or misleading on a chip
            out.append(f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}")
        else:
            out.append(ch)
    if hex_run:
        out.append("<" + " ".join(hex_run) + ">")
    return "".join(out)


def _default_system(template: str | None) -> str | None:
    """The system message the chat template inserts when the conversation has none."""
    if not template:
        return _FALLBACK_SYSTEM
    m = re.search(r"<\|im_start\|>system(?:\n|\\n)(.*?)<\|im_end\|>", template, re.DOTALL)
    return m.group(1) if m else None


class Tokenizer:
    """Tokenizer matching llama.cpp on the GGUF it was built from, or Hugging Face's GPT-2 tokenizer
    on the files it was built from. Build with from_gguf_reader(), from_hf_directory() or
    from_json(); the constructor takes an already configured `tokenizers.Tokenizer`.

    has_chat is False for a model without a chat layout (GPT-2): chat_prompt() and encode_chat()
    then raise ValueError instead of wrapping text in a template the model never saw."""

    def __init__(self, hf: _HFTokenizer, *, special_ids: Iterable[int], eos_ids: Iterable[int],
                 bos_id: int | None, add_bos: bool, chat_template: str | None, has_chat: bool = True):
        # Text such as "<|im_start|>" typed by a user stays plain text; parse_special splits
        # control tokens out by hand (below), so this flag never has to be toggled per call
        # (toggling it would not be thread-safe).
        hf.encode_special_tokens = True
        self._hf = hf
        self.vocab_size: int = hf.get_vocab_size(with_added_tokens=True)
        self.special_ids: frozenset[int] = frozenset(int(i) for i in special_ids)
        self.eos_ids: frozenset[int] = frozenset(int(i) for i in eos_ids)
        self.bos_id: int | None = None if bos_id is None else int(bos_id)
        self.add_bos: bool = bool(add_bos)
        self.chat_template: str | None = chat_template
        self.has_chat: bool = bool(has_chat)
        self.default_system: str | None = _default_system(chat_template) if self.has_chat else None

        vocab = hf.get_vocab(with_added_tokens=True)
        strings = [""] * self.vocab_size
        for tok, i in vocab.items():
            strings[i] = tok
        # Exact bytes of each token: byte-level characters map back to bytes; control tokens
        # are not byte-level encoded, so they stand for their own text.
        self._bytes = [s.encode("utf-8") if i in self.special_ids else bytes(_CHAR_TO_BYTE[c] for c in s)
                       for i, s in enumerate(strings)]
        # Bytes that no token stands for (this vocabulary lacks e.g. 0x04 and the UTF-8 lead bytes
        # 0xF1/0xF2); llama.cpp silently drops them when tokenizing, and so do we, to match it.
        self.missing_bytes: frozenset[int] = frozenset(set(range(256)) - {
            r[0] for i, r in enumerate(self._bytes) if len(r) == 1 and i not in self.special_ids})
        self._special_by_text = {strings[i]: i for i in self.special_ids}
        # Longest first so that a control token that is a prefix of another cannot win.
        alternatives = sorted(self._special_by_text, key=len, reverse=True)
        self._special_re = re.compile("(" + "|".join(map(re.escape, alternatives)) + ")") if alternatives else None

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_gguf_reader(cls, reader) -> "Tokenizer":
        """Build from a gguf.GGUFReader (slow part: reading the 49k token strings, ~seconds)."""
        def field(key, default=None):
            f = reader.fields.get(key)
            return default if f is None else f.contents()

        model, pre = field("tokenizer.ggml.model"), field("tokenizer.ggml.pre")
        if model != "gpt2":
            raise ValueError(f"unsupported tokenizer.ggml.model {model!r}: only byte-level BPE ('gpt2') is supported")
        tokens = field("tokenizer.ggml.tokens")
        merges = field("tokenizer.ggml.merges")
        types = field("tokenizer.ggml.token_type")
        if not tokens or not merges or types is None or len(types) != len(tokens):
            raise ValueError("GGUF lacks tokenizer.ggml.tokens / merges / token_type")

        bpe = models.BPE(vocab={t: i for i, t in enumerate(tokens)},
                         merges=[tuple(m.split(" ", 1)) for m in merges])
        hf = _HFTokenizer(bpe)
        byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        if pre == "smollm":
            # llama.cpp's smollm pre-tokenizer: each \p{N} character alone, then the GPT-2 regex.
            hf.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
        elif pre in (None, "default", "gpt-2", "gpt2"):
            hf.pre_tokenizer = byte_level
        else:
            raise ValueError(f"unsupported tokenizer.ggml.pre {pre!r}")
        hf.decoder = decoders.ByteLevel()

        special = [i for i, t in enumerate(types) if t == CONTROL_TOKEN_TYPE]
        # Registering them keeps their ids (they are already in the vocabulary) and marks them special.
        hf.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False) for i in special])

        eos = field("tokenizer.ggml.eos_token_id")
        # Generation must stop on <|endoftext|> and <|im_end|> even though metadata names only one.
        eos_ids = {tokens.index(t) for t in ("<|endoftext|>", "<|im_end|>") if t in tokens}
        if eos is not None:
            eos_ids.add(int(eos))
        return cls(hf, special_ids=special, eos_ids=eos_ids,
                   bos_id=field("tokenizer.ggml.bos_token_id"),
                   add_bos=bool(field("tokenizer.ggml.add_bos_token", False)),
                   chat_template=field("tokenizer.chat_template"))

    @classmethod
    def from_hf_directory(cls, directory: str | Path, extra_eos_ids: Iterable[int] = ()) -> "Tokenizer":
        """GPT-2's tokenizer from a Hugging Face model directory: vocab.json + merges.txt when
        present, else tokenizer.json (which must describe a byte-level BPE without prefix space).
        Special tokens: `<|endoftext|>` and every token the files mark special; `<|endoftext|>` and
        extra_eos_ids (e.g. the config's eos_token_id) end a generation. No chat template."""
        d = Path(directory)
        special: dict[str, int] = {}             # text -> id of every special token
        if (d / "vocab.json").is_file() and (d / "merges.txt").is_file():
            vocab = json.loads((d / "vocab.json").read_text(encoding="utf-8"))
            lines = (d / "merges.txt").read_text(encoding="utf-8").split("\n")
            merges = []
            for n, line in enumerate(lines, start=1):
                line = line.rstrip("\r")
                if not line or (n == 1 and line.startswith("#version")):
                    continue
                parts = line.split(" ")
                if len(parts) != 2:
                    raise ValueError(f"{d / 'merges.txt'} line {n} is not two tokens separated by a space: {line!r}")
                merges.append((parts[0], parts[1]))
        elif (d / "tokenizer.json").is_file():
            spec = json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))
            model, pre = spec.get("model") or {}, spec.get("pre_tokenizer") or {}
            if model.get("type") != "BPE":
                raise ValueError(f"{d / 'tokenizer.json'} is a {model.get('type')!r} tokenizer; only byte-level BPE "
                                 "(GPT-2's) is supported")
            if pre.get("type") != "ByteLevel" or pre.get("add_prefix_space") or pre.get("use_regex") is False:
                raise ValueError(f"{d / 'tokenizer.json'} does not use GPT-2's pre-tokenizer (ByteLevel with the GPT-2 "
                                 f"regex, no prefix space); found {json.dumps(pre)[:200]}")
            vocab = model.get("vocab") or {}
            merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model.get("merges") or []]
            special.update({t["content"]: int(t["id"]) for t in spec.get("added_tokens") or [] if t.get("special")})
        else:
            raise ValueError(f"{d} has no tokenizer: expected vocab.json and merges.txt, or tokenizer.json")
        config_file = d / "tokenizer_config.json"
        if config_file.is_file():
            added = json.loads(config_file.read_text(encoding="utf-8")).get("added_tokens_decoder") or {}
            special.update({t["content"]: int(i) for i, t in added.items() if isinstance(t, dict) and t.get("special")})
        if "<|endoftext|>" in vocab:
            special.setdefault("<|endoftext|>", int(vocab["<|endoftext|>"]))
        return cls.from_vocab_merges(vocab, merges, special, extra_eos_ids=extra_eos_ids, source=str(d))

    @classmethod
    def from_vocab_merges(cls, vocab: dict[str, int], merges: list[tuple[str, str]], special: dict[str, int],
                          extra_eos_ids: Iterable[int] = (), source: str = "the vocabulary") -> "Tokenizer":
        """GPT-2 byte-level BPE from a vocabulary (byte-level token string -> id), its merges and
        the special tokens (text -> id; ids beyond the vocabulary are added at those ids)."""
        vocab = {str(t): int(i) for t, i in vocab.items()}
        for text, i in special.items():
            if vocab.setdefault(text, i) != i:
                raise ValueError(f"{source}: special token {text!r} has id {i} but the vocabulary gives it {vocab[text]}")
        ids = sorted(vocab.values())
        if ids != list(range(len(ids))):
            raise ValueError(f"{source}: token ids must be 0..{len(ids) - 1} without gaps or repeats")
        special_ids = set(special.values())
        for text, i in vocab.items():
            if i not in special_ids and any(c not in _CHAR_TO_BYTE for c in text):
                raise ValueError(f"{source}: token {text!r} (id {i}) is not byte-level encoded; "
                                 "only GPT-2 style byte-level vocabularies are supported")
        if not merges:
            raise ValueError(f"{source}: the BPE merges are empty")
        hf = _HFTokenizer(models.BPE(vocab=vocab, merges=[tuple(m) for m in merges]))
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        hf.decoder = decoders.ByteLevel()
        hf.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in sorted(special, key=special.get)])
        eos = {special["<|endoftext|>"]} if "<|endoftext|>" in special else set()
        eos |= {int(i) for i in extra_eos_ids if 0 <= int(i) < len(vocab)}
        return cls(hf, special_ids=special.values(), eos_ids=eos, bos_id=special.get("<|endoftext|>"),
                   add_bos=False, chat_template=None, has_chat=False)

    def to_json(self) -> str:
        """Everything needed to rebuild this tokenizer without the GGUF (for a load cache)."""
        return json.dumps({
            "format": _JSON_FORMAT,
            "tokenizers_json": self._hf.to_str(),
            "special_ids": sorted(self.special_ids),
            "eos_ids": sorted(self.eos_ids),
            "bos_id": self.bos_id,
            "add_bos": self.add_bos,
            "chat_template": self.chat_template,
            "has_chat": self.has_chat,
        }, ensure_ascii=False)

    @classmethod
    def from_json(cls, s: str) -> "Tokenizer":
        d = json.loads(s)
        if d.get("format") != _JSON_FORMAT:
            raise ValueError(f"tokenizer cache has format {d.get('format')!r}, expected {_JSON_FORMAT}; rebuild it")
        return cls(_HFTokenizer.from_str(d["tokenizers_json"]), special_ids=d["special_ids"],
                   eos_ids=d["eos_ids"], bos_id=d["bos_id"], add_bos=d["add_bos"],
                   chat_template=d["chat_template"], has_chat=d.get("has_chat", True))

    # ---- encoding / decoding ---------------------------------------------------------------
    def encode(self, text: str, parse_special: bool = False) -> list[int]:
        """Token ids for text. parse_special=False: control-token text is plain text (llama.cpp's
        special=False); True: it becomes the control token (for chat prompts). Adds no BOS
        unless the GGUF asks for one. Bytes in missing_bytes are dropped, as llama.cpp does
        (see dropped_chars); a lone surrogate raises ValueError."""
        if not isinstance(text, str):
            raise ValueError(f"encode() needs a str, got {type(text).__name__}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError(f"text contains a lone surrogate at index {e.start} "
                             f"({text[e.start]!r}); it cannot be encoded as UTF-8") from None
        ids = [self.bos_id] if self.add_bos and self.bos_id is not None else []
        if parse_special and self._special_re is not None:
            # Like llama.cpp: cut out control tokens first, then tokenize the fragments between.
            for i, part in enumerate(self._special_re.split(text)):
                if i % 2:
                    ids.append(self._special_by_text[part])
                elif part:
                    ids.extend(self._hf.encode(part, add_special_tokens=False).ids)
        elif text:
            ids.extend(self._hf.encode(text, add_special_tokens=False).ids)
        return ids

    def dropped_chars(self, text: str) -> list[str]:
        """Characters of text that encode() cannot represent in full (some of their UTF-8 bytes are
        in missing_bytes and get dropped, as llama.cpp does); decode(encode(text)) == text exactly
        when this is empty. Lets a UI warn instead of losing text silently."""
        return [ch for ch in dict.fromkeys(text)
                if not self.missing_bytes.isdisjoint(ch.encode("utf-8", "surrogatepass"))]

    def _check_ids(self, ids) -> list[int]:
        if isinstance(ids, (str, bytes)):
            raise ValueError("ids must be a sequence of ints, not a string")
        out = []
        for x in ids:
            try:
                i = operator.index(x)  # accepts numpy integers, rejects floats
            except TypeError:
                raise ValueError(f"token id {x!r} is not an integer") from None
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} is out of range [0, {self.vocab_size})")
            out.append(i)
        return out

    def token_bytes(self, id: int) -> bytes:
        (i,) = self._check_ids([id])
        return self._bytes[i]

    def decode(self, ids) -> str:
        """Text for ids; control tokens appear as their text. Bytes are joined before decoding,
        so characters split over several tokens come out whole; a dangling partial character at
        the end becomes U+FFFD."""
        return b"".join(self._bytes[i] for i in self._check_ids(ids)).decode("utf-8", errors="replace")

    def pieces(self, ids) -> list[TokenPiece]:
        """One record per token: its bytes, text and a printable label for a chip."""
        out = []
        for i in self._check_ids(ids):
            raw = self._bytes[i]
            try:
                text, partial = raw.decode("utf-8"), False
            except UnicodeDecodeError:
                text, partial = "", True
            special = i in self.special_ids
            out.append(TokenPiece(id=i, raw=raw, text=text, is_partial=partial, is_special=special,
                                  display=text if special else _display(raw)))
        if any(p.is_partial for p in out):
            labels = spelled([p.raw for p in out], [p.is_partial for p in out])
            out = [replace(p, spells=label) if label else p for p, label in zip(out, labels)]
        return out

    def chat_prompt(self, user_text: str, system: str | None = None) -> str:
        """The GGUF chat template's layout (ChatML) for one user turn, ready for the assistant:
        <|im_start|>system\\n...<|im_end|>\\n<|im_start|>user\\n...<|im_end|>\\n<|im_start|>assistant\\n
        With system=None the template's default system message is used. Raises ValueError for a
        model without a chat template (has_chat False, e.g. GPT-2)."""
        if not self.has_chat:
            raise ValueError("this model has no chat template: it continues plain text (turn chat mode off)")
        if not isinstance(user_text, str) or not (system is None or isinstance(system, str)):
            raise ValueError("chat_prompt() needs str arguments")
        if system is None:
            system = self.default_system
        head = "" if system is None else f"<|im_start|>system\n{system}<|im_end|>\n"
        return f"{head}<|im_start|>user\n{user_text}<|im_end|>\n<|im_start|>assistant\n"

    def encode_chat(self, user_text: str, system: str | None = None) -> list[int]:
        """Ids of chat_prompt(user_text): the template's control tokens are real, while control-token
        text typed by the user stays plain text (a user cannot open or close a turn by typing it).
        Raises ValueError for a model without a chat template."""
        marker = "\x00USER\x00"
        before, after = self.chat_prompt(marker, system).split(marker)
        return self.encode(before, parse_special=True) + self.encode(user_text) + self.encode(after, parse_special=True)

    def __repr__(self) -> str:
        return (f"Tokenizer(vocab_size={self.vocab_size}, special={len(self.special_ids)}, eos={sorted(self.eos_ids)}"
                f"{'' if self.has_chat else ', no chat template'})")
