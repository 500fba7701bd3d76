"""llama.cpp side of bench/bench_model.py. Runs under .venv-ref (llama-cpp-python), never under the
project venv: the project must not import llama_cpp.

    .venv-ref/bin/python bench/llamacpp_worker.py MODEL.gguf --threads 2 --n-ctx 2048 --n-batch 1024

Speaks JSON lines: one command per line on stdin, one answer per line on stdout, so the benchmark can
interleave llama.cpp runs with its own (both see the same machine load). Commands:
    {"cmd": "info"}                                    -> versions and context settings
    {"cmd": "prefill", "ids": [...]}                   -> {"s": seconds} for eval() of the whole prompt
                                                          from an empty context
    {"cmd": "decode", "ids": [...], "next": [...]}     -> {"s": [seconds per token]}: eval() the prompt,
                                                          then one eval() per token of `next`
    {"cmd": "quit"}
Logs from llama.cpp go to stderr (verbose=False keeps them short).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--n-batch", type=int, default=1024)
    args = ap.parse_args()

    out = sys.stdout
    sys.stdout = sys.stderr          # nothing but our JSON answers may reach the real stdout

    import llama_cpp
    from llama_cpp import Llama

    t0 = time.perf_counter()
    llm = Llama(model_path=args.model, n_ctx=args.n_ctx, n_batch=args.n_batch, n_threads=args.threads,
                n_threads_batch=args.threads, verbose=False)
    load_s = time.perf_counter() - t0

    def answer(obj) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    def prefill(ids) -> float:
        llm.reset()                       # n_tokens = 0; eval() then drops the old KV entries
        t = time.perf_counter()
        llm.eval(ids)
        return time.perf_counter() - t

    answer({"ready": True, "load_s": load_s})
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        cmd = req.get("cmd")
        try:
            if cmd == "info":
                cp = llm.context_params
                answer({"llama_cpp_version": llama_cpp.__version__, "n_ctx": llm.n_ctx(),
                        "n_batch": llm.n_batch, "n_ubatch": int(cp.n_ubatch), "n_threads": int(cp.n_threads),
                        "n_threads_batch": int(cp.n_threads_batch), "flash_attn_type": int(cp.flash_attn_type),
                        "type_k": int(cp.type_k), "type_v": int(cp.type_v), "load_s": load_s,
                        "system_info": llama_cpp.llama_print_system_info().decode(errors="replace"),
                        "pid": os.getpid()})
            elif cmd == "prefill":
                answer({"s": prefill(req["ids"])})
            elif cmd == "decode":
                prefill(req["ids"])
                times = []
                for tok in req["next"]:
                    t = time.perf_counter()
                    llm.eval([tok])
                    times.append(time.perf_counter() - t)
                answer({"s": times})
            elif cmd == "quit":
                answer({"bye": True})
                break
            else:
                answer({"error": f"unknown command {cmd!r}"})
        except Exception as e:  # report, keep serving
            answer({"error": f"{type(e).__name__}: {e}"})


if __name__ == "__main__":
    main()
