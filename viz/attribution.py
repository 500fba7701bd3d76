"""Who wrote the answer: the direct logit attribution map (layers x heads, plus each layer's MLP and
the embedding) and the activation-patching maps (layers x positions), from model/attribution.py and
model/patching.py."""
from __future__ import annotations

import html
from typing import Callable

import numpy as np
import plotly.graph_objects as go

from model.records import Attribution, Patching

from .common import DIVERGING, make_figure, short, two_line_title
from .words import table

W = table("attribution", {
    "title": ("Direct logit attribution of {what} at #{pos}", "#{pos} 处 {what} 的直接 logit 归因"),
    "subtitle": ("parts sum to {total:.3f} (the model: {logit:.3f}); final norm's scale frozen at this run's value; "
                 "direct effect only", "各部分之和为 {total:.3f}（模型本身：{logit:.3f}）；最终归一化层的缩放固定为这次运行的值；"
                 "只算直接作用"),
    "head_axis": ("query head (last column: the layer's MLP)", "查询头（最后一列：这一层的 MLP）"),
    "layer": ("layer", "层"),
    "hover_head": ("layer %{{y}} · head %{{x}}<br>adds %{{z:+.3f}} to the logit<extra></extra>",
                   "第 %{{y}} 层 · 注意力头 %{{x}}<br>给 logit 加上 %{{z:+.3f}}<extra></extra>"),
    "hover_mlp": ("layer %{{y}} · MLP<br>adds %{{z:+.3f}} to the logit<extra></extra>",
                  "第 %{{y}} 层 · MLP<br>给 logit 加上 %{{z:+.3f}}<extra></extra>"),
    "contribution": ("adds to logit", "对 logit 的贡献"),
    "top": ("Largest contributions", "贡献最大的部分"),
    "embed": ("embedding", "嵌入"), "bias": ("biases", "偏置"),
    "head_item": ("layer {l}, head {h}", "第 {l} 层注意力头 {h}"), "mlp_item": ("layer {l}, MLP", "第 {l} 层 MLP"),
    "open": ("open it", "打开它"),
    # patching
    "p_title": ("Activation patching: how much of “{answer}” − “{foil}” comes back",
                "激活修补：“{answer}” − “{foil}” 恢复了多少"),
    "p_subtitle": ("clean {clean:+.2f}, corrupted {corrupted:+.2f}; 1 = the clean run's metric restored",
                   "干净运行 {clean:+.2f}，损坏运行 {corrupted:+.2f}；1 = 恢复到干净运行的指标"),
    "p_kind:resid_pre": ("residual stream (resid_pre)", "残差流（resid_pre）"),
    "p_kind:attn_out": ("attention output", "注意力输出"), "p_kind:mlp_out": ("MLP output", "MLP 输出"),
    "p_position": ("position (clean prompt's token)", "位置（干净提示词的词元）"),
    "p_hover": ("layer %{{y}} · position %{{x}}<br>restored %{{z:.2f}}<br>metric %{{customdata:.3f}}<extra></extra>",
                "第 %{{y}} 层 · 位置 %{{x}}<br>恢复比例 %{{z:.2f}}<br>指标 %{{customdata:.3f}}<extra></extra>"),
    "restored": ("restored", "恢复比例"),
})


def attribution_figure(a: Attribution, labels: Callable[[int], str]) -> go.Figure:
    """Layers down; the heads across, then one column for the layer's MLP (red adds, blue takes away)."""
    L, H = a.heads.shape
    z = np.concatenate([a.heads, a.mlps[:, None]], axis=1)                            # (L, H + 1)
    lim = float(np.abs(z).max()) or 1.0
    target = "“" + short(labels(a.target), 14) + "”"
    # notation, the same in both languages
    what = f"logit({target})" if a.foil is None else f"logit({target}) − logit(“{short(labels(a.foil), 14)}”)"
    custom = np.stack(np.meshgrid(np.arange(L), np.arange(H + 1), indexing="ij"), axis=-1)     # layer, head (H = MLP)
    heat_heads = dict(type="heatmap", z=a.heads.astype(np.float32).tolist(), x0=0, dx=1, y0=0, dy=1,
                      colorscale=DIVERGING, zmid=0, zmin=-lim, zmax=lim, customdata=custom[:, :H].tolist(),
                      hovertemplate=W("hover_head"), colorbar=dict(title=dict(text=W("contribution")), thickness=12))
    heat_mlp = dict(type="heatmap", z=a.mlps[:, None].astype(np.float32).tolist(), x0=H, dx=1, y0=0, dy=1,
                    colorscale=DIVERGING, zmid=0, zmin=-lim, zmax=lim, showscale=False,
                    customdata=custom[:, H:].tolist(), hovertemplate=W("hover_mlp"))
    layout = dict(xaxis=dict(title=dict(text=W("head_axis")), tickvals=list(range(H + 1)),
                             ticktext=[str(h) for h in range(H)] + ["MLP"], zeroline=False, showgrid=False),
                  yaxis=dict(title=dict(text=W("layer")), autorange="reversed", zeroline=False, showgrid=False,
                             dtick=max(1, L // 10)),
                  shapes=[dict(type="line", x0=H - 0.5, x1=H - 0.5, yref="paper", y0=0, y1=1,
                               line=dict(color="#333", width=2))], plot_bgcolor="#f4f4f4")
    title = two_line_title(W("title", what=what, pos=a.position), W("subtitle", total=a.total, logit=a.logit))
    return make_figure([heat_heads, heat_mlp], layout, title, height=int(min(760, 220 + 16 * L)),
                       margin=dict(l=60, r=20, t=90, b=60))


def top_contributions_html(a: Attribution, n: int = 8) -> str:
    """The parts with the largest |contribution|; heads and MLPs are buttons that open them."""
    L, H = a.heads.shape
    items = [(abs(a.heads[l, h]), a.heads[l, h], W("head_item", l=l, h=h), l, h) for l in range(L) for h in range(H)]
    items += [(abs(a.mlps[l]), a.mlps[l], W("mlp_item", l=l), l, None) for l in range(L)]
    items += [(abs(a.embed), a.embed, W("embed"), None, None)]
    if a.bias:
        items.append((abs(a.bias), a.bias, W("bias"), None, None))
    rows = []
    for _, v, name, l, h in sorted(items, key=lambda t: -t[0])[:n]:
        if l is None:
            cell = html.escape(name)
        else:
            data = f'data-gg-layer="{l}" data-gg-head="{h if h is not None else 0}"' + (' data-gg-mlp="1"' if h is None else "")
            cell = f'<button class="gg-pick-head" {data} title="{W("open")}">{html.escape(name)}</button>'
        rows.append(f'<tr><td>{cell}</td><td class="gg-num">{v:+.3f}</td></tr>')
    return f'<table class="gg-head-roles"><caption>{W("top")}</caption>{"".join(rows)}</table>'


def patching_figure(p: Patching, labels: Callable[[int], str], shown: str = "resid_pre") -> go.Figure:
    """A layers x positions map of the restored share for each patched activation, one at a time
    (buttons above switch); NaN cells are not computed yet."""
    kinds = (("resid_pre", p.resid_pre), ("attn_out", p.attn_out), ("mlp_out", p.mlp_out))
    L, T = p.resid_pre.shape
    data = []
    for kind, grid in kinds:
        r = p.restored(grid)
        data.append(dict(type="heatmap", z=np.where(np.isnan(r), None, np.round(r, 4)).tolist(),
                         customdata=np.where(np.isnan(grid), None, np.round(grid, 4)).tolist(),
                         x0=0, dx=1, y0=0, dy=1, colorscale=DIVERGING, zmid=0, zmin=-1, zmax=1,
                         visible=kind == shown, name=W(f"p_kind:{kind}"), hovertemplate=W("p_hover"),
                         colorbar=dict(title=dict(text=W("restored")), thickness=12)))
    buttons = [dict(label=W(f"p_kind:{k}"), method="restyle", args=[{"visible": [k2 == k for k2, _ in kinds]}])
               for k, _ in kinds]
    layout = dict(
        updatemenus=[dict(type="buttons", direction="right", buttons=buttons, active=[k for k, _ in kinds].index(shown),
                          x=0, xanchor="left", y=1.0, yanchor="bottom", pad=dict(t=4, b=4), font=dict(size=12))],
        xaxis=dict(title=dict(text=W("p_position")), tickvals=list(range(T)), ticktext=[short(t, 10) for t in p.positions],
                   showgrid=False, zeroline=False),
        yaxis=dict(title=dict(text=W("layer")), autorange="reversed", showgrid=False, zeroline=False, dtick=max(1, L // 10)),
        plot_bgcolor="#f4f4f4")
    title = two_line_title(W("p_title", answer=short(labels(p.answer), 14), foil=short(labels(p.foil), 14)),
                           W("p_subtitle", clean=p.clean, corrupted=p.corrupted))
    return make_figure(data, layout, title, height=int(min(780, 260 + 16 * L)), margin=dict(l=60, r=20, t=120, b=80))
