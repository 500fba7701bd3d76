"""Guided lessons: each sets the prompt, settings, layer, head and focus (as a shared link would),
says where to look, and fills its sentences with numbers measured on the running model at that
moment. A lesson never states a hard-coded result: where the model does not show the classic
effect, its text says what the model shows instead.

A lesson is two functions: `link(ctx)` -> the link parameters (share.URL_KEYS; may measure the
model to choose a layer or head) and `text(ctx, view)` -> its words in the request's language.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

from model import embedding_lab
from model import head_roles
from model.ablation import parse_ablation
from model.sampling import SamplingParams, distribution
from viz.common import pct
from viz.kv_cache import cache_bytes_per_token
from viz.tokens import han_cost
from viz.words import table

from . import share
from .handlers import Context
from .state import View

W = table("lessons", {
    "choose": ("Choose a lesson", "选择一节课"),
    "close": ("Close the lesson", "关闭这一课"),
    "unknown": ("Choose a lesson from the list first.", "请先从列表里选择一节课。"),
    "lesson_n": ("Lesson {n} of {total}", "第 {n} 课，共 {total} 课"),
    # tokens and bytes
    "t:tokens": ("Tokens and bytes: “strawberry” and Chinese", "词元与字节：strawberry 和中文"),
    "tokens": ("The model reads “{word}” as {n_straw}: {pieces}. It never sees the letters, so counting the "
               "r's means remembering how each piece is spelled. The {n_han} Chinese characters take {n_tok} tokens "
               "({ratio:.1f} per character): each character is 3 UTF-8 bytes, and a chip labelled like 我 (1/2) holds "
               "part of one. Look at the chips above: click one to follow it through every panel.",
               "模型把“{word}”读成{n_straw}：{pieces}。它看不到字母，所以要数出里面有几个 r，只能靠记住每个片段"
               "怎么拼写。这 {n_han} 个汉字用了 {n_tok} 个词元（每个字 {ratio:.1f} 个）：每个汉字是 3 个 UTF-8 字节，"
               "标着 我 (1/2) 这样的词元只装着一个字的一部分。看上方的词元：点击一个，就能在每个面板里跟着它。"),
    # embeddings
    "t:embed": ("Embedding arithmetic: king − man + woman", "嵌入向量的算术：king − man + woman"),
    "embed_hit": ("Nearest token to E[ king] − E[ man] + E[ woman]: {best} (cosine {cos:.3f}), so the model's embedding "
                  "really stores a “male → female” offset. ", "离 E[ king] − E[ man] + E[ woman] 最近的词元是 {best}"
                  "（余弦相似度 {cos:.3f}）：这个模型的嵌入向量确实存着一个“男 → 女”的偏移。"),
    "embed_miss": ("Nearest token to E[ king] − E[ man] + E[ woman]: {best} (cosine {cos:.3f}); “ queen” is {where}, "
                   "so in this model the offset is only approximate. ", "离 E[ king] − E[ man] + E[ woman] 最近的词元是 "
                   "{best}（余弦相似度 {cos:.3f}）；“ queen” {where}，所以在这个模型里这个偏移只是近似的。"),
    "rank": ("at rank {r}", "排第 {r}"),
    "one_token": ("one token", "一个词元"), "n_tokens": ("{n} tokens", " {n} 个词元"), "not_near": ("not among the 50 nearest", "不在最近的 50 个之中"),
    "embed_dir": ("Along the direction E[ cats] − E[ cat], “ dogs” projects to {dogs:.2f} and “ dog” to {dog:.2f}: "
                  "{verdict} Open “Embedding lab” below the map and try your own words (a leading space is part of "
                  "a word).", "沿着方向 E[ cats] − E[ cat]，“ dogs”的投影是 {dogs:.2f}，“ dog”是 {dog:.2f}：{verdict}"
                  "打开地图下面的“嵌入向量实验”，试试你自己的词（前导空格也是词的一部分）。"),
    "plural_yes": ("the plural sits further along it, so one direction encodes “plural”.",
                   "复数更靠这个方向的前面，所以有一个方向编码了“复数”。"),
    "plural_no": ("here the plural does not sit further along it.", "在这里复数并没有更靠前。"),
    # attention sink
    "t:sink": ("Attention and the sink", "注意力与注意力汇点"),
    "sink": ("Layer {layer}, head {head} puts {share} of its attention, on average, on the first token, which says "
             "nothing about this sentence: the attention sink, where a head parks its weight when nothing else is "
             "relevant. Over all {n} heads of the model the average is {mean}. Tick “Hide the attention sink” to "
             "see where the rest of the weight goes.",
             "第 {layer} 层的注意力头 {head} 平均把 {share} 的注意力放在第一个词元上，而它和这句话的意思毫无关系：这就是"
             "注意力汇点，没有别的值得关注时，注意力头就把权重停在那里。模型全部 {n} 个头的平均值是 {mean}。勾选"
             "“隐藏注意力汇点”，看看其余的权重去了哪里。"),
    # induction
    "t:induction": ("A previous-token head and an induction head", "前一个词元头与归纳头"),
    "induction": ("This text repeats itself. Scored on it, the strongest induction head is layer {layer}, head {head} "
                  "(score {score:.2f}): at a repeated word it attends to the word that followed the earlier copy, "
                  "which lets the model predict the repeat. The strongest previous-token head is layer {pl}, head "
                  "{ph} ({ps:.2f}): induction heads build on such heads. Shown: the induction head; the diagonal "
                  "stripe in the second half is the copy. The “Head roles” box below scores every head.",
                  "这段文本重复了自己。在它上面打分，最强的归纳头是第 {layer} 层的注意力头 {head}（分数 {score:.2f}）："
                  "遇到重复的词时，它关注上一次出现时紧跟在后面的那个词，于是模型能预测出重复的部分。最强的前一个词元头是"
                  "第 {pl} 层的注意力头 {ph}（{ps:.2f}）：归纳头正是建立在这类头之上。图中显示的是归纳头；后半段的那条"
                  "斜线就是复制。下面的“注意力头的角色”可以给每个头打分。"),
    "induction_weak": ("No head scores above 0.3 as an induction head on this text; the best is layer {layer}, head "
                       "{head} ({score:.2f}). Try the repeated random sequence in “Head roles” below.",
                       "在这段文本上没有注意力头的归纳分数超过 0.3；最好的是第 {layer} 层的注意力头 {head}（{score:.2f}）。"
                       "试试下面“注意力头的角色”里的重复随机序列。"),
    # adjectives
    "t:fluffy": ("“a fluffy blue creature”: adjectives to the noun", "“a fluffy blue creature”：形容词传给名词"),
    "fluffy": ("At “{noun}” (the focus), layer {layer}, head {head} puts {w_a} of its attention on “{adj1}” and "
               "{w_b} on “{adj2}”: more than any other head. This is how the noun's vector picks up what describes "
               "it, so later layers can treat it as a fluffy, blue creature.",
               "在“{noun}”（焦点词元）处，第 {layer} 层的注意力头 {head} 把 {w_a} 的注意力放在“{adj1}”上，{w_b} 放在"
               "“{adj2}”上，比其他任何头都多。名词的向量就是这样吸收了描述它的词，后面的层才能把它当作一个毛茸茸的、"
               "蓝色的生物。"),
    # MLP and a fact
    "t:fact": ("The MLP and a fact: the Eiffel Tower", "MLP 与一个事实：埃菲尔铁塔"),
    "fact": ("The model gives {target} {p} after “{prompt}”. Switching off the whole MLP of one layer at a time, the "
             "largest drops are {drops}; layer 0's MLP is left "
             "out of that list, since it works as part of the embedding: without it "
             "this prediction collapses ({p0}). A few MLPs carry most of the fact. Shown: layer {l1}'s MLP at the last token. Try it yourself in “Ablation” "
             "with {l1}:* in the neuron box.",
             "在“{prompt}”之后，模型给 {target} 的概率是 {p}。每次关掉一整层的 MLP，下降最多的是{drops}；第 0 层的 MLP 不算在内，因为它相当于嵌入的一部分：没有它，这个预测会"
             "彻底崩溃（{p0}）。少数几层 MLP 承载了这个事实的大部分。图中显示的是第 {l1} 层 MLP 在最后"
             "一个词元处的情况。你也可以在“消融”部分自己试：在神经元框里填 {l1}:*。"),
    "fact_one": ("The model gives {target} {p} after “{prompt}”; with its only MLP switched off: {p0}.",
                 "在“{prompt}”之后，模型给 {target} 的概率是 {p}；关掉它唯一的 MLP 之后：{p0}。"),
    "drop": ("layer {l} ({p})", "第 {l} 层（{p}）"), "list_sep": (", ", "、"), "list_and": (" and ", "和"),
    # logit lens
    "t:lens": ("The logit lens forms an answer", "logit 透镜：答案是怎样形成的"),
    "lens": ("The model's answer after “{prompt}” is {target} ({p}). Read through the logit lens, it first becomes the "
             "top guess after layer {first} and stays on top from layer {stable} on; after layer {half} its "
             "probability is only {p_half}. Early layers guess generic words; the answer forms in the upper layers.",
             "在“{prompt}”之后，模型的答案是 {target}（{p}）。透过 logit 透镜看，它在第 {first} 层之后第一次成为首选，"
             "从第 {stable} 层起一直排第一；在第 {half} 层之后，它的概率只有 {p_half}。前面的层猜的是泛泛的词，答案是在"
             "上面的层里形成的。"),
    "lens_never": ("The model's answer after “{prompt}” is {target} ({p}); the logit lens shows it on top only at the "
                   "last layer.", "在“{prompt}”之后，模型的答案是 {target}（{p}）；透过 logit 透镜，它只在最后一层才排第一。"),
    # temperature
    "t:temp": ("Temperature", "温度"),
    "temp": ("The top next token is {token}: {p1} at T = 1, {p03} at T = 0.3 and {p2} at T = 2 (entropy {h1:.2f}, "
             "{h03:.2f} and {h2:.2f} bits). Dividing the logits by a small T sharpens the distribution, a large T "
             "flattens it; T = 0 always picks {token}. The slider is set to 0.3: drag it and watch the bars, or open "
             "“Temperature side by side”.",
             "首选的下一个词元是 {token}：T = 1 时 {p1}，T = 0.3 时 {p03}，T = 2 时 {p2}（熵分别为 {h1:.2f}、{h03:.2f} "
             "和 {h2:.2f} 比特）。把 logit 除以较小的 T 会让分布更尖，较大的 T 会让它更平；T = 0 时总是选 {token}。"
             "滑块已设为 0.3：拖动它看柱子的变化，或者打开“温度并排比较”。"),
    # KV cache
    "t:kv": ("The KV cache: prefill and decode", "KV 缓存：预填充与解码"),
    "kv": ("This run read {T} tokens at once (the prefill) in {ms:.0f} ms and cached their keys and values: "
           "{bytes} bytes, {per:,} per token. Press “Next token”: the new step computes only the newest column and "
           "reads the rest from the cache; the table then shows its time beside the prefill's.",
           "这次运行一次读入了 {T} 个词元（预填充），用时 {ms:.0f} 毫秒，并缓存了它们的键和值：共 {bytes} 字节，每个词元 "
           "{per:,} 字节。按“下一个词元”：新的一步只计算最新的一列，其余的从缓存里读；表格里会把它的耗时和预填充并排列出。"),
    # chat
    "t:chat": ("Chat mode: the template around your words", "对话模式：包在你的话外面的模板"),
    "chat": ("In chat mode the question is wrapped in the model's chat template: {plain} tokens of text become "
             "{chat} tokens, the dark control tokens mark who speaks. The model's first reply token is {token} "
             "({p}). Untick “Chat mode” and run again to see the bare text continued instead.",
             "在对话模式下，问题被包进模型的聊天模板里：{plain} 个词元的文本变成了 {chat} 个词元，深色的控制词元标明是谁在说话。"
             "模型回复的第一个词元是 {token}（{p}）。取消勾选“对话模式”再运行一次，看看只续写原文会怎样。"),
    "chat_none": ("This model has no chat template, so chat mode is off; the text is continued as it is.",
                  "这个模型没有聊天模板，所以对话模式是关闭的；文本照原样续写。"),
})


@dataclass(frozen=True)
class Lesson:
    key: str
    section: str                                    # the heading to scroll to: sec-<panel>
    link: Callable[[Context], dict]                  # share.URL_KEYS -> value
    text: Callable[[Context, View], str]             # the lesson's words, already escaped


def _tok(ctx: Context, i: int) -> str:
    return "“" + ctx.labels(int(i)) + "”"


def _e(s) -> str:
    return html.escape(str(s))


_patterns = head_roles.all_patterns


# ---- tokens and bytes ------------------------------------------------------------------------------
STRAW = "How many r's are in strawberry? 我爱北京"


def _tokens_text(ctx: Context, view: View) -> str:
    pieces = [ctx.lm.decode([i]) for i in ctx.lm.tokenize(" strawberry")]
    n_han, n_tok = han_cost(view.trace.pieces)
    n_straw = W("one_token") if len(pieces) == 1 else W("n_tokens", n=len(pieces))
    return _e(W("tokens", n_straw=n_straw, word=" strawberry", pieces=" + ".join("“" + p + "”" for p in pieces),
                n_han=n_han, n_tok=n_tok, ratio=n_tok / max(n_han, 1)))


# ---- embeddings ------------------------------------------------------------------------------------
def _embed_text(ctx: Context, view: View) -> str:
    lm = ctx.lm
    try:
        r = embedding_lab.analogy(lm, " king", " man", " woman", 50)
        best = r.results[0]
        queen = lm.tokenize(" queen")
        if len(queen) == 1 and best.id == queen[0]:
            first = W("embed_hit", best=_tok(ctx, best.id), cos=best.cosine)
        else:
            rank = next((k + 1 for k, n in enumerate(r.results) if len(queen) == 1 and n.id == queen[0]), None)
            where = W("rank", r=rank) if rank else W("not_near")
            first = W("embed_miss", best=_tok(ctx, best.id), cos=best.cosine, where=where)
        d = embedding_lab.direction(lm, " cats", " cat", [" dogs", " dog"])
        dogs, dog = (s.projection for s in d.scores)
        second = W("embed_dir", dogs=dogs, dog=dog, verdict=W("plural_yes" if dogs > dog else "plural_no"))
    except ValueError as e:                       # a vocabulary without these words as single tokens
        return _e(str(e))
    return _e(first + second)


# ---- attention sink ---------------------------------------------------------------------------------
SINK_PROMPT = "The cat sat on the mat because the cat"


def _sink_scores(trace) -> np.ndarray:
    return head_roles.role_scores(_patterns(trace), trace.token_ids)["first"]          # (L, H)


def _sink_link(ctx: Context) -> dict:
    (l, h, _), = head_roles.top_heads(_sink_scores(ctx.lm.trace(SINK_PROMPT)), 1)
    return {"prompt": SINK_PROMPT, "layer": l, "head": h}


def _sink_text(ctx: Context, view: View) -> str:
    s = _sink_scores(view.trace)
    (l, h, v), = head_roles.top_heads(s, 1)
    return _e(W("sink", layer=l, head=h, share=pct(v), n=s.size, mean=pct(float(np.nanmean(s)))))


# ---- induction -----------------------------------------------------------------------------------------
REPEAT_PROMPT = ("Mr and Mrs Dursley of number four, Privet Drive, were proud to say. "
                 "Mr and Mrs Dursley of number four, Privet Drive, were proud to say")


def _roles(trace) -> dict:
    return head_roles.role_scores(_patterns(trace), trace.token_ids)


def _induction_link(ctx: Context) -> dict:
    tr = ctx.lm.trace(REPEAT_PROMPT)
    (l, h, _), = head_roles.top_heads(_roles(tr)["induction"], 1)
    return {"prompt": REPEAT_PROMPT, "layer": l, "head": h}


def _induction_text(ctx: Context, view: View) -> str:
    scores = _roles(view.trace)
    (l, h, s), = head_roles.top_heads(scores["induction"], 1)
    (pl, ph, ps), = head_roles.top_heads(scores["previous"], 1)
    if s < 0.3:
        return _e(W("induction_weak", layer=l, head=h, score=s))
    return _e(W("induction", layer=l, head=h, score=s, pl=pl, ph=ph, ps=ps))


# ---- adjectives to the noun ---------------------------------------------------------------------------
FLUFFY = "A fluffy blue creature"


def _adjective_positions(trace) -> tuple[int, int, int]:
    """Positions of “fluffy”, “blue” and the noun (the last token)."""
    texts = [t.strip().lower() for t in trace.tokens]
    return texts.index("fluffy") if "fluffy" in texts else 1, texts.index("blue") if "blue" in texts else 2, trace.T - 1


def _fluffy_best(trace) -> tuple[int, int, float, float]:
    a, b, noun = _adjective_positions(trace)
    P = _patterns(trace)[:, :, noun]                                       # (L, H, T)
    w = P[:, :, a] + P[:, :, b]
    l, h = np.unravel_index(int(np.argmax(w)), w.shape)
    return int(l), int(h), float(P[l, h, a]), float(P[l, h, b])


def _fluffy_link(ctx: Context) -> dict:
    tr = ctx.lm.trace(FLUFFY)
    l, h, _, _ = _fluffy_best(tr)
    return {"prompt": FLUFFY, "layer": l, "head": h, "focus": tr.T - 1}


def _fluffy_text(ctx: Context, view: View) -> str:
    tr = view.trace
    a, b, noun = _adjective_positions(tr)
    l, h, wa, wb = _fluffy_best(tr)
    return _e(W("fluffy", noun=tr.tokens[noun], layer=l, head=h, w_a=pct(wa), adj1=tr.tokens[a], w_b=pct(wb),
                adj2=tr.tokens[b]))


# ---- the MLP and a fact -------------------------------------------------------------------------------------
FACT = "The Eiffel Tower is in the city of"


def mlp_knockouts(lm, ids: tuple[int, ...], target: int) -> list[tuple[int, float]]:
    """(layer, probability of `target` at the last position with that layer's whole MLP switched
    off), for every layer, in layer order."""
    return [(l, float(distribution(lm.last_logits(ids, parse_ablation("", f"{l}:*", lm.cfg)), SamplingParams()).probs[target]))
            for l in range(lm.cfg.n_layer)]


@lru_cache(maxsize=4)         # the lesson's link and its text ask for the same runs
def _knockouts_cached(lm, ids: tuple[int, ...], target: int) -> tuple[tuple[int, float], ...]:
    return tuple(mlp_knockouts(lm, ids, target))


def _mlp_drops(ctx: Context, ids, target: int) -> tuple[float, list[tuple[int, float]]]:
    """(probability with layer 0's MLP off, the other layers by probability with their MLP off, lowest first).
    Layer 0's MLP works as part of the embedding in these models: without it every prediction breaks."""
    runs = _knockouts_cached(ctx.lm, tuple(int(i) for i in ids), int(target))
    return runs[0][1], sorted(runs[1:], key=lambda lp: lp[1])


def _fact_target(ctx: Context, trace) -> int:
    return int(np.argmax(trace.logits[-1]))


def _fact_link(ctx: Context) -> dict:
    tr = ctx.lm.trace(FACT)
    _, drops = _mlp_drops(ctx, tr.token_ids, _fact_target(ctx, tr))
    return {"prompt": FACT, "layer": drops[0][0] if drops else 0}


def _fact_text(ctx: Context, view: View) -> str:
    tr = view.trace
    target = _fact_target(ctx, tr)
    p = float(distribution(tr.logits[-1], SamplingParams()).probs[target])
    p0, drops = _mlp_drops(ctx, tr.token_ids, target)
    if not drops:                                  # a one-layer model: nothing beside layer 0
        return _e(W("fact_one", target=_tok(ctx, target), p=pct(p), prompt=tr.prompt, p0=pct(p0)))
    items = [W("drop", l=l, p=pct(q)) for l, q in drops[:3]]
    listed = items[0] if len(items) == 1 else W("list_sep").join(items[:-1]) + W("list_and") + items[-1]
    return _e(W("fact", target=_tok(ctx, target), p=pct(p), prompt=tr.prompt, drops=listed, l1=drops[0][0], p0=pct(p0)))


# ---- the logit lens ---------------------------------------------------------------------------------------
SNAPE = "Harry Potter's least favorite teacher was Professor"


def _lens_layers(view: View) -> tuple[int | None, int | None, int]:
    """(first layer where the final answer is top-1, layer from which it stays top-1, column of the last position)."""
    lens = view.lens
    col = lens.positions.index(view.T - 1)
    ranks = lens.target_ranks[1:, col]                                      # after each layer 0..L-1
    on_top = np.flatnonzero(ranks == 0)
    first = int(on_top[0]) if len(on_top) else None
    stable = next((l for l in range(len(ranks)) if np.all(ranks[l:] == 0)), None)
    return first, stable, col


def _lens_link(ctx: Context) -> dict:
    return {"prompt": SNAPE, "layer": ctx.lm.cfg.n_layer - 1}


def _lens_text(ctx: Context, view: View) -> str:
    lens, L = view.lens, ctx.lm.cfg.n_layer
    first, stable, col = _lens_layers(view)
    target = int(lens.target_ids[col])
    p = float(lens.target_probs[-1, col])
    if first is None or stable is None or first == L - 1:
        return _e(W("lens_never", prompt=view.trace.prompt, target=_tok(ctx, target), p=pct(p)))
    half = L // 2
    return _e(W("lens", prompt=view.trace.prompt, target=_tok(ctx, target), p=pct(p), first=first, stable=stable,
                half=half, p_half=pct(float(lens.target_probs[half + 1, col]))))


# ---- temperature ----------------------------------------------------------------------------------------------
TEMP_PROMPT = "My favourite colour is"


def _temp_text(ctx: Context, view: View) -> str:
    z = view.trace.logits[-1]
    d = {t: distribution(z, SamplingParams(t)) for t in (1.0, 0.3, 2.0)}
    top = int(d[1.0].top(1)[0])
    return _e(W("temp", token=_tok(ctx, top), p1=pct(d[1.0].probs[top]), p03=pct(d[0.3].probs[top]),
                p2=pct(d[2.0].probs[top]), h1=d[1.0].entropy_bits, h03=d[0.3].entropy_bits, h2=d[2.0].entropy_bits))


# ---- the KV cache ----------------------------------------------------------------------------------------------
def _kv_text(ctx: Context, view: View) -> str:
    tr = view.trace
    per = cache_bytes_per_token(tr.config)
    return _e(W("kv", T=tr.T, ms=1000 * tr.timings.get("forward_s", 0.0), bytes=f"{per * tr.T:,}", per=per))


# ---- chat mode ---------------------------------------------------------------------------------------------------
CHAT_PROMPT = "What is the capital of France?"


def _chat_link(ctx: Context) -> dict:
    return {"prompt": CHAT_PROMPT, "chat": "1" if ctx.lm.tokenizer.has_chat else ""}


def _chat_text(ctx: Context, view: View) -> str:
    if not ctx.lm.tokenizer.has_chat:
        return _e(W("chat_none"))
    d = distribution(view.trace.logits[-1], SamplingParams())
    top = int(d.top(1)[0])
    return _e(W("chat", plain=len(ctx.lm.tokenize(CHAT_PROMPT)), chat=view.T, token=_tok(ctx, top), p=pct(d.probs[top])))


LESSONS = (
    Lesson("tokens", "sec-tokens", lambda ctx: {"prompt": STRAW}, _tokens_text),
    Lesson("embed", "sec-embeddings", lambda ctx: {"prompt": "The king and the queen"}, _embed_text),
    Lesson("sink", "sec-attention", _sink_link, _sink_text),
    Lesson("induction", "sec-attention", _induction_link, _induction_text),
    Lesson("fluffy", "sec-attention", _fluffy_link, _fluffy_text),
    Lesson("fact", "sec-mlp", _fact_link, _fact_text),
    Lesson("lens", "sec-logit_lens", _lens_link, _lens_text),
    Lesson("temp", "sec-distribution", lambda ctx: {"prompt": TEMP_PROMPT, "t": "0.3"}, _temp_text),
    Lesson("kv", "sec-kv_cache", lambda ctx: {"prompt": "The capital of France is"}, _kv_text),
    Lesson("chat", "sec-tokens", _chat_link, _chat_text),
)
BY_KEY = {lesson.key: lesson for lesson in LESSONS}


def choices() -> list[tuple[str, str]]:
    """(title in the request's language, key) for the lesson menu."""
    return [(f"{i + 1}. {W('t:' + lesson.key)}", lesson.key) for i, lesson in enumerate(LESSONS)]


_STARTS = iter(range(1, 1 << 62))


def on_lesson(ctx: Context, view: View | None, key) -> tuple[View, dict, dict]:
    """Start a lesson: run its link (prompt, settings, layer, head, focus), then fill in its words.
    -> (view, outputs, control values) as share.on_open_link gives them, plus "lesson-text"."""
    lesson = BY_KEY.get(key) if isinstance(key, str) else None
    if lesson is None:
        raise ValueError(W("unknown"))
    params = {k: str(v) for k, v in lesson.link(ctx).items()}
    view, out, values = share.on_open_link(ctx, view, params)
    n = LESSONS.index(lesson) + 1
    out["lesson-text"] = (f'<div class="gg-lesson" data-gg-scroll="{lesson.section}" data-n="{next(_STARTS)}">'
                          f'<button class="gg-lesson-close" aria-label="{W("close")}" title="{W("close")}">×</button>'
                          f'<div class="gg-lesson-head">{W("lesson_n", n=n, total=len(LESSONS))} · '
                          f'<b>{_e(W("t:" + lesson.key))}</b></div><p>{lesson.text(ctx, view)}</p></div>')
    out.setdefault("notice", "")
    return view, out, values
