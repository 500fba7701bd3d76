"""A worked example of attention with tiny numbers: an explicitly labelled toy, not the model."""
from __future__ import annotations

import html
import math

import numpy as np


def worked_example_numbers() -> dict:
    """A toy: 2 tokens, 4 dims, identity W_Q = W_K = W_V, no scaling, no mask."""
    X = np.array([[1, 0, 1, 0], [0, 1, 0, 1]], dtype=float)
    Q = K = V = X @ np.eye(4)
    scores = Q @ K.T
    weights = np.exp(scores - scores.max(1, keepdims=True))
    weights /= weights.sum(1, keepdims=True)
    scaled = scores / math.sqrt(4)
    scaled_w = np.exp(scaled[0]) / np.exp(scaled[0]).sum()
    return dict(X=X, scores=scores, weights=weights, out=weights @ V, scaled_row=scaled[0], scaled_w=scaled_w)


_TOY_TEXT = {
    "en": dict(
        title="A worked example with tiny numbers (a toy, not the model)",
        intro="Two tokens, 4 dimensions, and W<sub>Q</sub> = W<sub>K</sub> = W<sub>V</sub> = identity, "
              "so Q = K = V = the inputs.",
        tok="token", inp="input x", score="scores with x₁, x₂ (Q·Kᵀ)", w="softmax weights", out="output (Σ weight·V)",
        after="Token 1 matches itself (score 2) and not token 2 (score 0): softmax([2, 0]) ≈ [{a}, {b}], so its "
              "output is {a}·x₁ + {b}·x₂. The real model adds two steps: it divides by √d (here √4 = 2, giving "
              "softmax([1, 0]) ≈ [{c}, {d}]) and masks the future, so token 1 could only see itself."),
    "zh": dict(
        title="用小数字演算一遍（玩具例子，不是模型的数值）",
        intro="两个词元、4 维，并令 W<sub>Q</sub> = W<sub>K</sub> = W<sub>V</sub> = 单位矩阵，于是 Q = K = V = 输入。",
        tok="词元", inp="输入 x", score="与 x₁、x₂ 的分数（Q·Kᵀ）", w="softmax 权重", out="输出（Σ 权重·V）",
        after="词元 1 与自己匹配（分数 2），与词元 2 不匹配（分数 0）：softmax([2, 0]) ≈ [{a}, {b}]，"
              "所以它的输出是 {a}·x₁ + {b}·x₂。真实模型还多两步：先除以 √d（这里 √4 = 2，得到 "
              "softmax([1, 0]) ≈ [{c}, {d}]），再用掩码遮住未来的位置，所以词元 1 其实只能看到自己。"),
}


def worked_example(lang: str = "en") -> str:
    """The toy attention example as a small HTML table, numbers computed in numpy; `lang` "en"/"zh"."""
    if lang not in _TOY_TEXT:
        raise ValueError(f"lang must be one of {', '.join(_TOY_TEXT)}, got {lang!r}")
    t, n = _TOY_TEXT[lang], worked_example_numbers()
    vec = lambda a, d=2: "[" + ", ".join(f"{x:.{d}f}".rstrip("0").rstrip(".") if d else f"{x:g}" for x in a) + "]"
    rows = "".join(
        f"<tr><td>x{'₁₂'[i]}</td><td>{vec(n['X'][i], 0)}</td><td>{vec(n['scores'][i], 0)}</td>"
        f"<td>{vec(n['weights'][i])}</td><td>{vec(n['out'][i])}</td></tr>" for i in range(2))
    esc = html.escape
    after = t["after"].format(a=f"{n['weights'][0, 0]:.2f}", b=f"{n['weights'][0, 1]:.2f}",
                              c=f"{n['scaled_w'][0]:.2f}", d=f"{n['scaled_w'][1]:.2f}")
    return (f'<div class="worked-example"><p><b>{esc(t["title"])}</b></p><p>{t["intro"]}</p>'
            f'<table><thead><tr><th>{esc(t["tok"])}</th><th>{esc(t["inp"])}</th><th>{esc(t["score"])}</th>'
            f'<th>{esc(t["w"])}</th><th>{esc(t["out"])}</th></tr></thead><tbody>{rows}</tbody></table>'
            f'<p>{esc(after)}</p></div>')
