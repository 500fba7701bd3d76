"""Head roles: a layers x heads map of how strongly each head plays one role (scores from
model/head_roles.py), one role at a time (buttons above the map), and the top heads of every role
as buttons that open the head in the attention section (assets/page.js)."""
from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from .common import SEQUENTIAL, make_figure, two_line_title
from .words import table

ROLES = ("previous", "first", "self", "duplicate", "induction")

W = table("head_roles", {
    "role:previous": ("previous token", "前一个词元"),
    "role:first": ("first token (sink)", "第一个词元（汇点）"),
    "role:self": ("itself", "自身"),
    "role:duplicate": ("earlier copy of the same token", "同一词元的前一次出现"),
    "role:induction": ("induction (the token after the earlier copy)", "归纳（前一次出现之后的那个词元）"),
    "short:previous": ("previous", "前一个"), "short:first": ("first (sink)", "第一个（汇点）"), "short:self": ("self", "自身"),
    "short:duplicate": ("duplicate", "重复"), "short:induction": ("induction", "归纳"),
    "on_repeated": ("on {n} random tokens repeated twice", "在重复两遍的 {n} 个随机词元上"),
    "on_prompt": ("on this prompt ({T} tokens)", "在当前提示词上（{T} 个词元）"),
    "title": ("Head roles: how much attention each head puts where a role points", "注意力头的角色：每个头把多少注意力放在角色所指的位置上"),
    "subtitle": ("{source}; mean attention weight; click a cell to open that head",
                 "{source}；平均注意力权重；点击格子即可打开对应的注意力头"),
    "hover": ("layer %{{y}} · head %{{x}}<br>{role}: %{{z:.3f}}<extra></extra>",
              "第 %{{y}} 层 · 注意力头 %{{x}}<br>{role}：%{{z:.3f}}<extra></extra>"),
    "not_measured": ("{role}: not measurable on this text (no token repeats)", "{role}：这段文本里没有重复的词元，无法测量"),
    "layer": ("layer", "层"), "head": ("query head", "查询头"), "score": ("score", "分数"),
    "top": ("Top heads", "得分最高的注意力头"),
    "open": ("open layer {layer}, head {head} in the attention section", "在注意力部分打开第 {layer} 层的注意力头 {head}"),
    "none": ("not measurable here", "这里无法测量"),
})


def role_figure(scores: dict[str, np.ndarray], source: str, shown: str = "induction") -> go.Figure:
    """One heatmap per role (layers down, heads across, 0..1); the buttons above switch between them."""
    L, H = scores[ROLES[0]].shape
    data = []
    for role in ROLES:
        z = scores[role]
        custom = np.stack(np.meshgrid(np.arange(L), np.arange(H), indexing="ij"), axis=-1)     # (L, H, 2): layer, head
        data.append(dict(type="heatmap", z=np.where(np.isnan(z), None, z.astype(np.float32)).tolist(),
                         x0=0, dx=1, y0=0, dy=1, zmin=0, zmax=1, colorscale=SEQUENTIAL, customdata=custom.tolist(),
                         hovertemplate=W("hover", role=W(f"role:{role}")), visible=role == shown, name=W(f"short:{role}"),
                         colorbar=dict(title=dict(text=W("score")), thickness=12)))
    buttons = [dict(label=W(f"short:{role}"), method="restyle", args=[{"visible": [r == role for r in ROLES]}])
               for role in ROLES]
    layout = dict(
        updatemenus=[dict(type="buttons", direction="right", buttons=buttons, active=ROLES.index(shown),
                          x=0, xanchor="left", y=1.0, yanchor="bottom", pad=dict(t=4, b=4), showactive=True,
                          font=dict(size=12))],
        xaxis=dict(title=dict(text=W("head")), dtick=1, zeroline=False, showgrid=False),
        yaxis=dict(title=dict(text=W("layer")), autorange="reversed", dtick=max(1, L // 10), zeroline=False, showgrid=False),
        plot_bgcolor="#f4f4f4")
    title = two_line_title(W("title"), W("subtitle", source=source))
    return make_figure(data, layout, title, height=int(min(760, 240 + 16 * L)), margin=dict(l=60, r=20, t=120, b=50))


def top_heads_html(top: dict[str, list[tuple[int, int, float]]]) -> str:
    """Each role's best heads as buttons (data-gg-layer / data-gg-head: assets/page.js opens the head)."""
    rows = []
    for role in ROLES:
        heads = top.get(role) or []
        cells = "".join(
            f'<button class="gg-pick-head" data-gg-layer="{l}" data-gg-head="{h}" '
            f'title="{html.escape(W("open", layer=l, head=h))}">{l}.{h} <small>{s:.2f}</small></button>'
            for l, h, s in heads) or f'<span class="gg-muted">{W("none")}</span>'
        rows.append(f'<tr><th>{W(f"role:{role}")}</th><td>{cells}</td></tr>')
    return f'<table class="gg-head-roles"><caption>{W("top")}</caption>{"".join(rows)}</table>'
