"""`python -m model "some prompt"`: the tokens with their ids, and the top 10 next tokens."""
from __future__ import annotations

import argparse
import sys

from .bundled import ModelFileError
from .lm import load_model
from .sampling import SamplingParams, distribution


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model", description=__doc__)
    ap.add_argument("prompt")
    ap.add_argument("--model", help="a local Llama-family GGUF file or Hugging Face GPT-2 directory "
                    "(default: the bundled SmolLM2-135M-Instruct)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--temperature", type=float, default=1.0)
    args = ap.parse_args(argv)
    try:
        lm = load_model(args.model, device=args.device)
        tr = lm.trace(args.prompt)
        dist = distribution(tr.logits[-1], SamplingParams(temperature=args.temperature))
    except (ModelFileError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{lm.cfg.name} on {tr.device} ({tr.dtype}), {tr.T} tokens:")
    for piece in tr.pieces:
        print(f"  {piece.id:>6}  {piece.display}")
    print(f"top 10 next tokens (temperature {args.temperature:g}):")
    for i in dist.top(10):
        print(f"  {int(i):>6}  {lm.tokenizer.pieces([int(i)])[0].display:<20} {dist.probs_t[i]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
