"""The page's view controls, defined once: each field names the element id it is read from.

The wiring (app.py) collects these elements by id, Gradio hands their values over as a dict,
and `Controls.from_page` coerces and checks them; adding a control is one field here plus its
element in the layout.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from model.sampling import SamplingParams, check_params

from viz.words import table

from .i18n import lang_code

# A control's name ("temperature", "top-k", ...) stays as the page's label spells it in both languages.
SAY = table("server.controls", {
    "number": ("{what} must be a number, got {x}", "{what} 必须是数字，收到的是 {x}"),
    "finite": ("{what} must be a finite number, got {x}", "{what} 必须是有限的数字，收到的是 {x}"),
    "whole": ("{what} must be a whole number in {lo}..{hi}, got {x}", "{what} 必须是 {lo}..{hi} 之间的整数，收到的是 {x}"),
    "name:layer": ("layer", "层"), "name:head": ("head", "注意力头"), "name:temperature": ("temperature", "温度"),
    "name:seed": ("seed", "随机种子"), "name:token position": ("token position", "词元位置"),
    "name:number of tokens": ("number of tokens", "词元个数"), "name:B's token position": ("B's token position", "B 的词元位置"),
    "sampling": ("{detail}", "采样设置无效（温度 0–2，top-k ≥ 0，top-p 在 (0, 1] 之间，随机种子为非负整数）：{detail}"),
})


def _control(default, elem_id: str):
    return field(default=default, metadata={"elem_id": elem_id})


@dataclass(frozen=True)
class Controls:
    layer: int = _control(0, "layer")
    head: int = _control(0, "head")
    exclude_first: bool = _control(False, "exclude-first")   # hide the attention sink (key position 0)
    log_scale: bool = _control(False, "log-scale")
    mlp_all: bool = _control(False, "mlp-all")
    heads_metric: str = _control("sink", "heads-metric")
    embed_3d: bool = _control(False, "embed-3d")
    temperature: float = _control(1.0, "temperature")
    top_k: int = _control(0, "top-k")
    top_p: float = _control(1.0, "top-p")
    seed: int = _control(0, "seed")
    lang: str = _control("en", "language")      # the page's language radio ("English" / "中文") as "en" / "zh"

    @classmethod
    def from_page(cls, lm, values: Mapping[str, Any]) -> "Controls":
        """Coerce what the page sends, keyed by element id (numbers may arrive as floats or None;
        a missing id takes its default), and check ranges."""
        c = lm.cfg
        raw = {f.name: values.get(f.metadata["elem_id"], f.default) for f in fields(cls)}
        top_k = whole_number(raw["top_k"], "top-k", 0, c.vocab_size)
        temperature, top_p = number(raw["temperature"], "temperature"), number(raw["top_p"], "top-p")
        seed = whole_number(raw["seed"], "seed", 0, 2**63 - 1)
        try:
            check_params(temperature, top_k, top_p, seed, vocab_size=c.vocab_size)
        except ValueError as e:
            raise ValueError(SAY("sampling", detail=str(e))) from None
        return cls(layer=whole_number(raw["layer"], "layer", 0, c.n_layer - 1),
                   head=whole_number(raw["head"], "head", 0, c.n_head - 1),
                   exclude_first=bool(raw["exclude_first"]), log_scale=bool(raw["log_scale"]),
                   mlp_all=bool(raw["mlp_all"]), heads_metric=str(raw["heads_metric"] or "sink"),
                   embed_3d=bool(raw["embed_3d"]), temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
                   lang=lang_code(raw["lang"]))

    def with_(self, **changes) -> "Controls":
        return replace(self, **changes)

    @property
    def sampling(self) -> SamplingParams:
        return SamplingParams(self.temperature, self.top_k, self.top_p, self.seed)


CONTROL_IDS = tuple(f.metadata["elem_id"] for f in fields(Controls))


def _name(what: str) -> str:
    return SAY("name:" + what) if "name:" + what in SAY.entries else what


def number(x, what: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ValueError(SAY("number", what=_name(what), x=repr(x))) from None
    if not math.isfinite(v):
        raise ValueError(SAY("finite", what=_name(what), x=repr(x)))
    return v


def whole_number(x, what: str, lo: int, hi: int) -> int:
    # Exact integers are checked as integers: going through float would round 2**63 - 1 up.
    v = x if isinstance(x, int) and not isinstance(x, bool) else number(x, what)
    if v != int(v) or not lo <= v <= hi:
        raise ValueError(SAY("whole", what=_name(what), lo=lo, hi=hi, x=repr(x)))
    return int(v)
