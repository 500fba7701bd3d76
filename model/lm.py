"""`LanguageModel`: a loaded transformer plus its tokenizer, and the operations the panels need.

It owns no per-user state: every method takes what it needs and returns a new value, so one
instance can be shared read-only by every session of the app.
"""
from __future__ import annotations

import contextlib
import functools
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import bundled, heap, load_cache
from .ablation import Ablation
from .config import ModelConfig
from .growth import extend_positions
from .names import act_name, split_name
from .records import LogitLens, Neighbours
from .sampling import SamplingParams, distribution, sample
from .trace import DERIVED_HOOKS, HALF_PRECISION_HOOKS, PACKED_HOOKS, Activations, Trace
from .transformer import KVCache, Transformer

STEP_SPARE = 32      # positions of room a decode step leaves after a trace (model/growth.py)

def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available")
    return dev


@functools.lru_cache(maxsize=8)
def _lower_flat_index(T: int, device: torch.device) -> torch.Tensor:
    """Flat indices of a T x T lower triangle, row after row (the packed order of model/trace.py)."""
    rows, cols = torch.tril_indices(T, T, device=device)
    return rows * T + cols


def _pack_lower(y: torch.Tensor) -> torch.Tensor:
    """(H, t, S) pattern rows of positions S-t..S-1 -> (H, packed): each row up to its own position."""
    t, S = y.shape[-2:]
    if t == 1:                        # a decode step: the new row is whole
        return y[:, 0]
    if t == S:                        # a prompt: the lower triangle (an index gather beats a mask)
        return y.flatten(1).index_select(1, _lower_flat_index(S, y.device))
    rows = torch.arange(t, device=y.device)[:, None] + (S - t)
    return y[:, torch.arange(S, device=y.device)[None, :] <= rows]


class _Recorder:
    """Collects tap outputs during one forward pass: batch dimension dropped, half-precision hooks
    converted at once (so float32 patterns of all layers never exist together), moved to CPU."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self._shared: dict[tuple, np.ndarray] = {}

    def __call__(self, name: str, x: torch.Tensor):
        y = x[0]
        hook = split_name(name)[1]
        if hook in PACKED_HOOKS:          # (H, t, S) rows of positions S-t..S-1: each row up to its own position
            self.arrays[name] = _pack_lower(y.to(torch.float16)).cpu().numpy()
            return
        if hook in HALF_PRECISION_HOOKS:
            self.arrays[name] = y.to(torch.float16).cpu().numpy()
            return
        # resid_post[l] and resid_pre[l+1] are the same tensor: keep one array for both. The key
        # cannot be reused by another tensor while the stored array keeps this memory alive.
        key = (y.data_ptr(), y.shape, y.dtype, y.device)
        if key not in self._shared:
            self._shared[key] = y.detach().cpu().numpy()
        self.arrays[name] = self._shared[key]


@dataclass(frozen=True)
class Generation:
    ids: list[int]          # prompt ids followed by the new ones
    new_ids: list[int]
    text: str               # the new text
    stopped_at_eos: bool


class LanguageModel:
    def __init__(self, net: Transformer, tokenizer, device: torch.device, source: str):
        self.net = net.eval()
        self.tokenizer = tokenizer
        self.device = device
        self.source = source
        self.cfg: ModelConfig = net.cfg
        self._record_names = frozenset(n for n in net.taps if split_name(n)[1] not in DERIVED_HOOKS)
        self._eos_ids = frozenset(tokenizer.eos_ids)
        self._embed_norms = None
        self._position_table = None
        # Taps are attached per call, so two passes at once would mix their recordings.
        self._lock = threading.RLock()

    @property
    def dtype(self) -> str:
        """The compute dtype of the weights, e.g. "float32"."""
        return str(next(self.net.parameters()).dtype).replace("torch.", "")

    def position_table(self) -> np.ndarray | None:
        """The learned position vectors (n_ctx, C) of a GPT-2-family model; None for RoPE."""
        if self._position_table is None and self.net.pos_embed is not None:
            self._position_table = self.net.pos_embed.weight.detach().float().cpu().numpy()
        return self._position_table

    # ---- text <-> ids --------------------------------------------------------------------------
    def tokenize(self, text: str, parse_special: bool = False) -> list[int]:
        return self.tokenizer.encode(text, parse_special=parse_special)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids))

    def _check_ids(self, ids) -> list[int]:
        ids = [int(i) for i in ids]
        if not ids:
            raise ValueError("the prompt is empty: give at least one token")
        if len(ids) > self.cfg.n_ctx:
            raise ValueError(f"{len(ids)} tokens is more than the model's context of {self.cfg.n_ctx}")
        bad = [i for i in ids if not 0 <= i < self.cfg.vocab_size]
        if bad:
            raise ValueError(f"token ids out of range 0..{self.cfg.vocab_size - 1}: {bad[:5]}")
        return ids

    def _ids_and_prompt(self, prompt: str | Sequence[int], parse_special: bool) -> tuple[list[int], str]:
        if isinstance(prompt, str):
            return self._check_ids(self.tokenize(prompt, parse_special)), prompt
        ids = self._check_ids(prompt)
        return ids, self.decode(ids)

    # ---- forward passes --------------------------------------------------------------------------
    @torch.inference_mode()
    def forward(self, ids: Sequence[int]) -> np.ndarray:
        """Plain forward, nothing captured: logits (T, V) float32."""
        x = torch.tensor([self._check_ids(ids)], device=self.device)
        with self._lock:
            self.net.attach(None)
            return self.net(x)[0].float().cpu().numpy()

    @torch.inference_mode()
    def _run(self, ids: list[int], pos0: int = 0, cache: KVCache | None = None, last_only: bool = False,
             ablate: Ablation | None = None):
        rec = _Recorder()
        editors = ablate.editors(self.cfg) if ablate is not None else None
        with self._lock, self._threads_for(len(ids)):   # editors, like the recorder, are attached only while this pass runs
            self.net.attach(rec, self._record_names)
            self.net.attach_editors(editors)
            try:
                self.net(torch.tensor([ids], device=self.device), pos0, cache, last_only)
            finally:
                self.net.attach_editors(None)
                self.net.attach(None)
        return rec.arrays

    @torch.inference_mode()
    def last_logits(self, ids: Sequence[int], ablate: Ablation | None = None) -> np.ndarray:
        """Logits (V,) at the last position, nothing captured (the cheap path for many what-if runs);
        `ablate`: heads and MLP neurons to switch off, as in `trace`."""
        ids, ablate = self._check_ids(ids), self._check_ablation(ablate)
        editors = ablate.editors(self.cfg) if ablate is not None else None
        with self._lock, self._threads_for(len(ids)):
            self.net.attach(None)
            self.net.attach_editors(editors)
            try:
                return self.net(torch.tensor([ids], device=self.device), 0, None, True)[0, -1].float().cpu().numpy()
            finally:
                self.net.attach_editors(None)

    def trace(self, prompt: str | Sequence[int], parse_special: bool = False,
              ablate: Ablation | None = None) -> Trace:
        """Run the model on a prompt (text or ids) and keep every activation. `ablate`: heads and
        MLP neurons to switch off (model.ablation); the trace then records the ablated run, and
        an empty ablation gives exactly the plain trace."""
        ids, text = self._ids_and_prompt(prompt, parse_special)
        ablate = self._check_ablation(ablate)
        t0 = time.perf_counter()
        arrays = self._run(ids, ablate=ablate)
        return self._make_trace(text, ids, arrays, n_prompt=len(ids), ablation=ablate,
                                timings={"forward_s": time.perf_counter() - t0, "forward_tokens": len(ids)})

    def _check_ablation(self, ablate) -> Ablation | None:
        if ablate is None:
            return None
        if not isinstance(ablate, Ablation):
            raise ValueError(f"ablate must be a model.ablation.Ablation, got {type(ablate).__name__}")
        return None if ablate.empty else ablate.validate(self.cfg)

    def _make_trace(self, prompt: str, ids: list[int], arrays: dict, n_prompt: int, timings: dict,
                    ablation: Ablation | None = None, growth: tuple | None = None) -> Trace:
        pieces = tuple(self.tokenizer.pieces(ids))
        tokens = tuple(p.text if not p.is_partial else p.display for p in pieces)
        return Trace(prompt=prompt, token_ids=tuple(ids), tokens=tokens, pieces=pieces, config=self.cfg,
                     acts=Activations(arrays, self.cfg.n_layer, growth), device=str(self.device),
                     dtype=self.dtype,
                     n_prompt=n_prompt, timings=timings, ablation=ablation)

    # ---- generation with a KV cache --------------------------------------------------------------
    def cache_from_trace(self, trace: Trace, extra: int) -> KVCache:
        """The trace's stored keys and values are exactly a KV cache: load them into one."""
        cache = KVCache(self.cfg, trace.T + extra, self.device)
        for l in range(self.cfg.n_layer):
            cache.k[l, 0, :, :trace.T] = torch.from_numpy(trace.act("attn.hook_k", l))
            cache.v[l, 0, :, :trace.T] = torch.from_numpy(trace.act("attn.hook_v", l))
        cache.length = trace.T
        return cache

    def step(self, trace: Trace, token_id: int, cache: KVCache | None = None) -> Trace:
        """Append one token: run only the new position against the cached keys and values, and
        return the trace extended by the new position's activations (the prefix is not recomputed)."""
        token_id = self._check_ids([token_id])[0]
        if trace.T + 1 > self.cfg.n_ctx:
            raise ValueError(f"the context is full ({self.cfg.n_ctx} tokens)")
        if cache is None or cache.length != trace.T:
            cache = self.cache_from_trace(trace, extra=1)
        t0 = time.perf_counter()
        delta = self._run([token_id], pos0=trace.T, cache=cache, ablate=trace.ablation)   # an ablated run stays ablated
        dt = time.perf_counter() - t0
        ids = list(trace.token_ids) + [token_id]
        # Written after the trace's own arrays when it is the newest of its line (model/growth.py).
        buffers, room = trace.acts.growth or (None, None)
        spare = max(cache.capacity - cache.length, STEP_SPARE)
        arrays, buffers, room = extend_positions(trace.acts.stored, buffers, room, trace.T, delta, self.cfg.n_layer, spare)
        timings = dict(trace.timings, last_step_s=dt, decode_s=trace.timings.get("decode_s", 0.0) + dt,
                       decode_tokens=trace.timings.get("decode_tokens", 0) + 1)
        # `prompt` stays the text that was run; the generated text is read from the pieces
        # (decoding one token at a time would break multi-byte characters into U+FFFD).
        return self._make_trace(trace.prompt, ids, arrays, trace.n_prompt, timings,
                                ablation=trace.ablation, growth=(buffers, room))

    def next_token(self, trace: Trace, params: SamplingParams) -> int:
        """The token the sampler picks after the trace's last position."""
        return sample(distribution(trace.logits[-1], params), position=trace.T)

    def stream(self, trace: Trace, max_new_tokens: int, params: SamplingParams) -> Iterator[Trace]:
        """Sample, append, repeat; yields the extended trace after every token; stops at end-of-sequence."""
        cache = self.cache_from_trace(trace, extra=max_new_tokens)
        for _ in range(max_new_tokens):
            if trace.token_ids[-1] in self._eos_ids and trace.T > trace.n_prompt:
                return
            trace = self.step(trace, self.next_token(trace, params), cache)
            yield trace

    @torch.inference_mode()
    def generate(self, prompt: str | Sequence[int], max_new_tokens: int = 20, temperature: float = 1.0,
                 top_k: int = 0, top_p: float = 1.0, seed: int = 0, parse_special: bool = False) -> Generation:
        """Text in, text out, nothing captured (the fast path). Same picks as `stream`."""
        params = SamplingParams(temperature, top_k, top_p, seed)
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be a whole number >= 0, got {max_new_tokens!r}")
        ids, _ = self._ids_and_prompt(prompt, parse_special)
        if len(ids) + max_new_tokens > self.cfg.n_ctx:
            raise ValueError(f"prompt ({len(ids)}) + new tokens ({max_new_tokens}) exceed the context of {self.cfg.n_ctx}")
        with self._lock:
            return self._generate(ids, max_new_tokens, params)

    @contextlib.contextmanager
    def _threads_for(self, n_positions: int):
        """One intra-op thread for a single-position pass on the CPU. Its matrices are too small
        to split, and a second thread that waits at every op's barrier for a busy core (the
        browser drawing, another request) made a 60 ms decode step take 700 ms."""
        if self.device.type != "cpu" or n_positions > 1 or torch.get_num_threads() == 1:
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def _generate(self, ids: list[int], max_new_tokens: int, params: SamplingParams) -> Generation:
        self.net.attach(None)
        cache = KVCache(self.cfg, len(ids) + max_new_tokens, self.device)
        logits = self.net(torch.tensor([ids], device=self.device), 0, cache, last_only=True)
        new: list[int] = []
        for _ in range(max_new_tokens):
            nxt = sample(distribution(logits[0, -1].float().cpu().numpy(), params), position=len(ids) + len(new))
            new.append(nxt)
            if nxt in self._eos_ids:
                break
            if len(new) < max_new_tokens:
                with self._threads_for(1):
                    logits = self.net(torch.tensor([[nxt]], device=self.device), cache.length, cache, last_only=True)
        stopped = bool(new) and new[-1] in self._eos_ids
        return Generation(ids + new, new, self.decode(new), stopped)

    # ---- logit lens ------------------------------------------------------------------------------
    @torch.inference_mode()
    def logit_lens(self, trace: Trace, positions: Sequence[int] | None = None, k: int = 5,
                   known: LogitLens | None = None, targets: Sequence[int] | None = None) -> LogitLens:
        """Read the residual stream with the final norm and unembedding, for the positions asked
        (default: all) and every layer. Costs (L+1) x V x C multiply-adds per position: ask only
        for the positions on screen. `known`: a lens of a trace this one extends (same prefix,
        e.g. before a decode step); its positions are copied instead of recomputed. `targets`: one
        token id per position to follow (target_probs/ranks) instead of this trace's final top-1,
        e.g. another run's prediction, to see what an ablation did to it."""
        L = self.cfg.n_layer
        positions = tuple(range(trace.T)) if positions is None else tuple(int(p) for p in positions)
        if not positions or any(not 0 <= p < trace.T for p in positions):
            raise ValueError(f"positions must be within 0..{trace.T - 1}, got {positions}")
        if targets is not None:
            targets = self._check_ids(targets)
            if len(targets) != len(positions):
                raise ValueError(f"targets: one token id per position, got {len(targets)} for {len(positions)} positions")
        if known is not None and known.top_ids.shape[-1] == k and targets is None:
            reuse = {p: i for i, p in enumerate(known.positions)}
            todo = [p for p in positions if p not in reuse]
            fresh = self.logit_lens(trace, todo, k) if todo else None
            rows = [(known, reuse[p]) if p in reuse else (fresh, todo.index(p)) for p in positions]

            def pick(field: str, axis: int):
                return np.stack([np.take(getattr(src, field), i, axis=axis) for src, i in rows], axis=axis)
            return LogitLens(positions, known.layer_labels, pick("top_ids", 1), pick("top_probs", 1),
                             pick("target_ids", 0), pick("target_probs", 1), pick("target_ranks", 1))
        streams = [trace.act("hook_resid_pre", 0)] + [trace.act("hook_resid_post", l) for l in range(L)]
        x = torch.from_numpy(np.stack([s[list(positions)] for s in streams])).to(self.device)  # (L+1, P, C)
        logits = F.linear(self.net.final_norm(x), self.net.W_U).float()   # (L+1, P, V)
        probs = logits.softmax(-1)
        top_p, top_i = probs.topk(k, dim=-1)
        target = (logits[-1].argmax(-1) if targets is None
                  else torch.tensor(targets, dtype=torch.long, device=logits.device))   # (P,)
        target_logit = logits.gather(-1, target.view(1, -1, 1).expand(L + 1, -1, 1))  # (L+1, P, 1)
        if logits.device.type == "cpu":      # NumPy's compare-and-count is ~5x torch's here (12 vs 58 ms)
            ranks = torch.from_numpy((logits.numpy() > target_logit.numpy()).sum(-1))
        else:
            ranks = (logits > target_logit).sum(-1)                      # (L+1, P)
        target_probs = probs.gather(-1, target.view(1, -1, 1).expand(L + 1, -1, 1))[..., 0]
        return LogitLens(positions, ("embed",) + tuple(str(l) for l in range(L)),
                         top_i.cpu().numpy(), top_p.cpu().numpy(), target.cpu().numpy(),
                         target_probs.cpu().numpy(), ranks.cpu().numpy())

    # ---- embeddings -------------------------------------------------------------------------------
    @torch.inference_mode()
    def neighbours(self, ids: Sequence[int], k: int = 8) -> Neighbours:
        """The k vocabulary tokens whose embedding rows are most similar (cosine) to each id's."""
        query = np.array(list(dict.fromkeys(self._check_ids(ids))), dtype=np.int64)
        E = self.net.embed.weight                                        # (V, C)
        if self._embed_norms is None:
            self._embed_norms = E.norm(dim=-1).clamp_min(1e-12)          # (V,)
        q = E[torch.from_numpy(query).to(E.device)]                      # (n, C)
        cos = (q @ E.T) / (self._embed_norms[None] * self._embed_norms[torch.from_numpy(query).to(E.device)][:, None])
        cos[torch.arange(len(query)), torch.from_numpy(query)] = -2.0   # a token is not its own neighbour
        sims, nbr = cos.topk(k, dim=-1)                                  # (n, k)
        nbr_np = nbr.cpu().numpy()
        all_ids = np.array(list(dict.fromkeys([*query.tolist(), *nbr_np.ravel().tolist()])), dtype=np.int64)
        vectors = E[torch.from_numpy(all_ids).to(E.device)].float().cpu().numpy()
        return Neighbours(query, nbr_np, sims.float().cpu().numpy(), all_ids, vectors)

    # ---- facts -----------------------------------------------------------------------------------
    def parameter_counts(self) -> dict[str, int]:
        """Parameters by where they live, counting the tied embedding once."""
        counts = {"embedding": 0, "position": 0, "attention": 0, "mlp": 0, "norms": 0, "unembedding": 0}
        for name, p in self.net.named_parameters():
            if name.startswith("embed."):
                counts["embedding"] += p.numel()
            elif name.startswith("pos_embed."):
                counts["position"] += p.numel()
            elif ".attn." in name:
                counts["attention"] += p.numel()
            elif ".mlp." in name:
                counts["mlp"] += p.numel()
            elif name.startswith("unembed."):
                counts["unembedding"] += p.numel()
            else:
                counts["norms"] += p.numel()
        return counts


def build(cfg: ModelConfig, state_dict: dict, tokenizer, device: torch.device, source: str) -> LanguageModel:
    with torch.device("meta"):
        net = Transformer(cfg)
    net = net.to_empty(device=device)
    missing, unexpected = net.load_state_dict(state_dict, strict=False, assign=device.type == "cpu")
    missing = [m for m in missing if not m.endswith("inv_freq")]
    if missing or unexpected:
        raise ValueError(f"weights do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for block in net.blocks:          # buffers are not in the state dict (built on "meta"): make them for real
        if block.attn.rotary is not None:
            block.attn.rotary.inv_freq = block.attn.rotary.frequencies(device)
    return LanguageModel(net, tokenizer, device, source)


def load_model(path: str | Path | None = None, device: str = "auto", use_cache: bool = True) -> LanguageModel:
    """Load the bundled SmolLM2-135M-Instruct (path=None), a local Llama-family GGUF file, or a local
    Hugging Face GPT-2 directory (config.json, model.safetensors or pytorch_model.bin, and
    vocab.json + merges.txt or tokenizer.json).

    GGUF reads are cached (load_cache, keyed by the file's sha256). Directories are not: their
    float weights are memory-mapped as they are, so a cache would only copy them, and hashing the
    files would cost about as long as reading them."""
    from .gguf_loader import read_gguf
    from .hf_gpt2 import read_hf_gpt2

    heap.fix_mmap_threshold()      # freed activations go back to the OS (model/heap.py)
    dev = pick_device(device)
    if path is None:
        path = bundled.default_model_path()
        digest = bundled.verify_default(path)
    else:
        path = Path(path)
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise bundled.ModelFileError(f"{path} is a folder without config.json: not a Hugging Face model directory")
            cfg, sd, tok = read_hf_gpt2(path)
            return build(cfg, sd, tok, dev, source=str(path))
        if not path.is_file():
            raise bundled.ModelFileError(f"no model file or directory at {path}")
        digest = bundled.sha256_of(path)
    cached = load_cache.load(digest) if use_cache else None
    if cached is None:
        cached = read_gguf(path)
        if use_cache:
            load_cache.store(digest, *cached)
    cfg, sd, tok = cached
    return build(cfg, sd, tok, dev, source=str(path))
