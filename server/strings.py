"""What the page's controls say, in English and Chinese: one entry per element id.

A "label" entry is the component's label, a "value" entry a button's text. server/page.py builds
the controls in English from this table; the language switch (app.py) sends the other language's
texts with `updates(lang)`. Terms follow the explanations: 词元 (token), 提示词 (prompt),
注意力头 (attention head), 残差流 (residual stream), logit 透镜 (logit lens).
"""
from __future__ import annotations

import html

import gradio as gr

LABELS: dict[str, dict[str, str]] = {
    "prompt": {"en": "Prompt", "zh": "提示词"},
    "chat": {"en": "Chat mode (wrap in the chat template)", "zh": "对话模式（套用聊天模板）"},
    "embed-3d": {"en": "3-D projection", "zh": "三维投影"},
    "layer": {"en": "Layer (← → keys)", "zh": "层（← → 键）"},
    "head": {"en": "Query head", "zh": "查询头"},
    "exclude-first": {"en": "Hide the attention sink (key position 0)", "zh": "隐藏注意力汇点（键位置 0）"},
    "log-scale": {"en": "Log colour scale", "zh": "对数色标"},
    "heads-metric": {"en": "All-heads overview colours", "zh": "全部注意力头总览图的着色依据"},
    "mlp-all": {"en": "Show all neurons (not only the most active)", "zh": "显示全部神经元（不只是最活跃的）"},
    "temperature": {"en": "Temperature (0 = greedy)", "zh": "温度 T（0 = 贪心）"},
    "top-k": {"en": "Top-k (0 = off)", "zh": "top-k（0 = 关闭）"},
    "top-p": {"en": "Top-p (1 = off)", "zh": "top-p（1 = 关闭）"},
    "seed": {"en": "Seed", "zh": "随机种子"},
    "n-tokens": {"en": "N", "zh": "N（要生成的词元数）"},
    "output": {"en": "Text so far (prompt + generated)", "zh": "当前文本（提示词 + 已生成部分）"},
    "session-file": {"en": "Session file", "zh": "会话文件"},
    "ablate-heads": {"en": "Heads to switch off (layer.head, e.g. 3.4, 10.0 or 24.*)",
                     "zh": "要关掉的注意力头（层.头，例如 3.4、10.0 或 24.*）"},
    "ablate-neurons": {"en": "MLP neurons to switch off (layer:neuron, e.g. 5:1297)",
                       "zh": "要关掉的 MLP 神经元（层:神经元，例如 5:1297）"},
    "prompt-b": {"en": "Second prompt (B), compared with the current one (A)", "zh": "第二个提示词（B），与当前提示词（A）比较"},
    "path-positions": {"en": "Token positions (e.g. 1, 3-4, last; empty: focus and last)",
                       "zh": "词元位置（例如 1, 3-4, last；留空则取焦点词元和最后一个词元）"},
    "path-include-first": {"en": "Include position 0 (the attention sink)", "zh": "包括位置 0（注意力汇点）"},
    "path-direction": {"en": "Direction only (unit length)", "zh": "只看方向（单位长度）"},
    "examples": {"en": "Examples", "zh": "示例"},
    "lens-positions": {"en": "Positions in the grid (e.g. 0-5, 9, last; empty: the last 12 and the focus)",
                       "zh": "网格中显示的位置（例如 0-5, 9, last；留空则取最后 12 个和焦点词元）"},
    "lab-a": {"en": "a", "zh": "a"}, "lab-b": {"en": "− b", "zh": "− b"}, "lab-c": {"en": "+ c", "zh": "+ c"},
    "lab-k": {"en": "k nearest", "zh": "最近的 k 个"},
    "dir-a": {"en": "direction from b …", "zh": "方向：从 b …"}, "dir-b": {"en": "b", "zh": "b"},
    "dir-words": {"en": "… to a; words to place on it (comma-separated, spaces kept)",
                  "zh": "… 到 a；要放到这个方向上的词（用逗号分隔，空格照原样保留）"},
    "lesson": {"en": "Guided lessons: each sets up the page and tells you what to look at",
               "zh": "引导课程：每一课都会设置好页面，并告诉你该看什么"},
    "dla-target": {"en": "Target token (empty: the model's top guess at the focus token)",
                   "zh": "目标词元（留空：焦点词元处模型的首选）"},
    "dla-foil": {"en": "Foil token (optional: explain target − foil)", "zh": "对照词元（可选：解释 目标 − 对照）"},
    "routes-threshold": {"en": "Keep edges with a share above", "zh": "只保留占比高于此值的边"},
    "patch-clean": {"en": "Clean prompt", "zh": "干净的提示词"},
    "patch-corrupted": {"en": "Corrupted prompt (same number of tokens)", "zh": "损坏的提示词（词元数相同）"},
    "patch-answer": {"en": "Answer", "zh": "答案"}, "patch-foil": {"en": "Foil", "zh": "对照"},
    "temps-box": {"en": "Temperature side by side: the same text continued at T = 0, 0.7, 1.2 and 2",
                  "zh": "温度并排比较：同一段文本在 T = 0、0.7、1.2 和 2 下的续写"},
    "head-roles-box": {"en": "Head roles: which heads look at the previous token, the first token, an earlier copy, "
                             "or what followed it (induction heads)",
                       "zh": "注意力头的角色：哪些头看前一个词元、第一个词元、同一词元的前一次出现，或者它之后的词元（归纳头）"},
    "embedding-lab": {"en": "Embedding lab: arithmetic and directions with the model's own vectors",
                      "zh": "嵌入向量实验：用模型自己的向量做算术、找方向"},
    "attention-basics": {"en": "How attention works: a worked example, and which heads share keys and values",
                         "zh": "注意力如何工作：一个演算示例，以及哪些注意力头共用键和值"},
}

# Markdown blocks whose whole text follows the language.
TEXTS: dict[str, dict[str, str]] = {
    "share-note": {"en": "Every figure has a camera button (top right) that saves it as PNG. The address bar "
                         "always holds this view (prompt, settings, layer, head, focus token): copy it to share.",
                   "zh": "每张图右上角都有一个相机按钮，可以把图保存为 PNG。地址栏始终记录着当前的视图"
                         "（提示词、设置、层、注意力头、焦点词元）：复制它就能分享。"},
}

TEXTS["head-roles-note"] = {
    "en": "Each head is scored by the attention it puts where a role points, averaged over the positions where the "
          "role is defined. **Induction heads** copy in context: at a token that appeared before, they attend to the "
          "token that *followed* its earlier copy, so the model can predict that the same continuation comes again. "
          "The classic test is a sequence of random tokens repeated twice: in the second half every token has an "
          "earlier copy, so the induction score is measured at 20 positions, while a plain prompt has few repeats. "
          "Scores are mean attention weights (0 to 1); click a cell or a head below to open it in the attention view.",
    "zh": "每个注意力头的得分，是它放在角色所指位置上的注意力，在该角色有定义的所有位置上取平均。**归纳头**负责在上下文中"
          "复制：遇到一个之前出现过的词元时，它会关注这个词元上一次出现时*紧跟在后面*的那个词元，于是模型能预测同样的后续"
          "会再次出现。经典的测试是把一串随机词元重复两遍：后半段的每个词元在前面都出现过一次，所以能在 20 个位置上测出归纳"
          "分数，而普通的提示词里重复很少。分数是平均注意力权重（0 到 1）；点击格子或下面的注意力头，就能在注意力视图中打开它。",
}

# What an empty panel says fills it (assets/plots.js shows the page's language).
HINTS: dict[str, dict[str, str]] = {
    "ablation": {"en": "Press “Switch off and compare” to see the prediction with those parts switched off.",
                 "zh": "按“关掉并比较”，看看关掉这些部分之后的预测。"},
    "compare": {"en": "Press Compare to see prompt B beside the current prompt at the same layer and head.",
                "zh": "按“比较”，在同一层、同一个注意力头上把提示词 B 和当前的提示词并排比较。"},
    "residual-path": {"en": "Press “Draw paths” to follow the chosen tokens through the layers.",
                      "zh": "按“画出路径”，追踪所选词元穿过各层的路径。"},
    "head-roles": {"en": "Press “Score on a repeated random sequence” (or “on this prompt”) to map every head's roles.",
                   "zh": "按“在重复的随机序列上打分”（或“在当前提示词上打分”），画出每个注意力头的角色。"},
    "attribution": {"en": "Press “Attribute” to split the focus token's logit into what each head and MLP wrote.",
                    "zh": "按“归因”，把焦点词元的 logit 拆成每个注意力头和每个 MLP 写进去的份额。"},
    "routes": {"en": "Press “Draw the routes” to see which earlier states the focus token's prediction was built from.",
               "zh": "按“画出信息路径”，看焦点词元的预测是由前面哪些状态汇集而成的。"},
    "patching": {"en": "Press “Patch every layer and position” to see where the clean answer comes back.",
                 "zh": "按“修补每一层、每个位置”，看干净的答案在哪里恢复。"},
    "lab-analogy": {"en": "Press “a − b + c” to find the tokens nearest to E[a] − E[b] + E[c] (e.g. king − man + woman).",
                    "zh": "按“a − b + c”，找出离 E[a] − E[b] + E[c] 最近的词元（例如 king − man + woman）。"},
    "lab-direction": {"en": "Press “Place on the direction” to see where each word falls along E[a] − E[b].",
                      "zh": "按“放到方向上”，看每个词落在 E[a] − E[b] 方向上的什么位置。"},
}

BUTTONS: dict[str, dict[str, str]] = {
    "run": {"en": "Run", "zh": "运行"},
    "layer-prev": {"en": "◀ layer", "zh": "◀ 上一层"},
    "layer-next": {"en": "layer ▶", "zh": "下一层 ▶"},
    "layer-play": {"en": "▶ play", "zh": "▶ 播放"},
    "next-token": {"en": "Next token", "zh": "下一个词元"},
    "generate": {"en": "Generate N", "zh": "生成 N 个"},
    "export": {"en": "Download this session (JSON)", "zh": "下载本次会话（JSON）"},
    "ablate": {"en": "Switch off and compare", "zh": "关掉并比较"},
    "compare": {"en": "Compare", "zh": "比较"},
    "draw-path": {"en": "Draw paths", "zh": "画出路径"},
    "lens-show": {"en": "Show these positions", "zh": "显示这些位置"},
    "dla-run": {"en": "Attribute", "zh": "归因"},
    "routes-run": {"en": "Draw the routes", "zh": "画出信息路径"},
    "patch-run": {"en": "Patch every layer and position", "zh": "修补每一层、每个位置"},
    "patch-cancel": {"en": "Cancel", "zh": "取消"},
    "lesson-start": {"en": "Start the lesson", "zh": "开始这一课"},
    "temps-run": {"en": "Continue at four temperatures", "zh": "用四个温度续写"},
    "roles-repeated": {"en": "Score on a repeated random sequence", "zh": "在重复的随机序列上打分"},
    "roles-prompt": {"en": "Score on this prompt", "zh": "在当前提示词上打分"},
    "lab-analogy-run": {"en": "a − b + c", "zh": "a − b + c"},
    "lab-direction-run": {"en": "Place on the direction", "zh": "放到方向上"},
}

PLACEHOLDERS: dict[str, dict[str, str]] = {
    "prompt": {"en": "Type a prompt, then press Run", "zh": "输入提示词，然后按“运行”"},
}

HEADER = {
    "en": ("## GlassGPT · see a transformer think\n**{name}** running live on **{device}**: {L} layers, {H} query heads "
           "sharing {KV} key/value heads, width {C}. Every number on this page comes from the model."),
    "zh": ("## GlassGPT · 看 Transformer 如何思考\n**{name}** 正在 **{device}** 上实时运行：{L} 层，{H} 个查询头"
           "共用 {KV} 个键/值头，宽度 {C}。页面上的每个数字都来自这个模型。"),
}


def header(cfg, device, lang: str = "en") -> str:
    return HEADER[lang].format(name=html.escape(cfg.name), device=device, L=cfg.n_layer, H=cfg.n_head,
                               KV=cfg.n_kv_head, C=cfg.d_model)


HEADS_METRIC_CHOICES = {
    "en": [("attention to first token (sink)", "sink"), ("to previous token", "previous"),
           ("to itself", "self"), ("entropy", "entropy")],
    "zh": [("对第一个词元（注意力汇点）", "sink"), ("对前一个词元", "previous"), ("对自身", "self"), ("熵", "entropy")],
}


def label(elem_id: str, lang: str = "en") -> str:
    return LABELS[elem_id][lang]


def button(elem_id: str, lang: str = "en") -> str:
    return BUTTONS[elem_id][lang]


def text(elem_id: str, lang: str = "en") -> str:
    return TEXTS[elem_id][lang]


def ids() -> list[str]:
    """Every element the language switch updates, in the order of `updates`."""
    return list(LABELS) + list(BUTTONS) + list(TEXTS)


def updates(lang: str, present: set[str]) -> list:
    """Gradio updates for the elements of `ids()` that are on the page (the others are skipped)."""
    out = []
    for elem_id in LABELS:
        if elem_id not in present:
            continue
        extra = {"placeholder": PLACEHOLDERS[elem_id][lang]} if elem_id in PLACEHOLDERS else {}
        if elem_id == "heads-metric":
            extra["choices"] = HEADS_METRIC_CHOICES[lang]
        out.append(gr.update(label=LABELS[elem_id][lang], **extra))
    for elem_id in BUTTONS:
        if elem_id in present:
            out.append(gr.update(value=BUTTONS[elem_id][lang]))
    for elem_id in TEXTS:
        if elem_id in present:
            out.append(gr.update(value=TEXTS[elem_id][lang]))
    return out
