"""Benchmark of "Who wrote the answer": direct logit attribution, information-flow routes (64
tokens) and a full activation-patching grid (16 tokens), on the bundled model, CPU. Medians of a
few runs; the table goes to bench/results.md (section "## Attribution")."""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.results_file import replace_section  # noqa: E402
from model import load_model  # noqa: E402
from model.attribution import direct_logit_attribution  # noqa: E402
from model.patching import activation_patching  # noqa: E402
from model.routes import contributions, node_readout, route  # noqa: E402

TEXT = ("The Eiffel Tower is in the city of Paris, and the Colosseum is in the city of Rome. Tourists visit both "
        "of them every summer, and many of them take the train between the two capitals to see the museums there.")


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    lm = load_model(device=args.device)
    rows = []

    ids64 = lm.tokenize(TEXT + " " + TEXT)[:64]
    assert len(ids64) == 64, len(ids64)
    tr64 = lm.trace(ids64)
    target = int(np.argmax(tr64.logits[-1]))
    s, a = timed(lambda: direct_logit_attribution(lm, tr64, 63, target), args.repeat)
    rows.append(("direct logit attribution, 64 tokens (one position, all heads and MLPs)", s,
                 f"parts sum to {a.total:.4f}, logit {a.logit:.4f}"))
    s, c = timed(lambda: contributions(lm, tr64), args.repeat)
    rows.append(("routes: contributions of every head, key and query, 64 tokens", s, "the ≤ 2 s target"))
    s, r = timed(lambda: route(c, 63, 0.08), args.repeat)
    s2, _ = timed(lambda: node_readout(lm, tr64, r.nodes), args.repeat)
    rows.append(("routes: the route (threshold 0.08) and a logit-lens read of its nodes", s + s2,
                 f"{len(r.edges)} edges, {len(r.nodes)} nodes"))

    clean = lm.tokenize("The Eiffel Tower is in the city of Paris, and the Colosseum is in the city of")[:16]
    corrupt = lm.tokenize("The Colosseum is in the city of Rome, and the Eiffel Tower is in the city of")[:16]
    assert len(clean) == len(corrupt) == 16, (len(clean), len(corrupt))
    a_id, f_id = lm.tokenize(" Paris")[0], lm.tokenize(" Rome")[0]
    s, _ = timed(lambda: activation_patching(lm, clean, corrupt, a_id, f_id, kinds=("resid_pre",)), args.repeat)
    rows.append((f"patching grid, resid_pre only: {lm.cfg.n_layer} x 16 = {lm.cfg.n_layer * 16} patched runs", s, ""))
    s, _ = timed(lambda: activation_patching(lm, clean, corrupt, a_id, f_id), args.repeat)
    rows.append((f"patching grids, resid_pre + attention + MLP: {3 * lm.cfg.n_layer * 16} patched runs", s, ""))

    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    md = [f"## Attribution (`bench/bench_attribution.py`, {when})", "",
          f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {lm.device}; median of {args.repeat} runs.", "",
          "| what | seconds | note |", "|---|---:|---|"]
    md += [f"| {name} | {sec:.2f} | {note} |" for name, sec, note in rows]
    print("\n".join(md))
    replace_section(ROOT / "bench" / "results.md", "## Attribution", "\n".join(md))
    (ROOT / "bench" / "results_attribution.json").write_text(json.dumps(
        {"when": when, "device": str(lm.device), "rows": [{"what": n, "seconds": round(s, 4), "note": t} for n, s, t in rows]},
        indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
