"""What Chinese costs this model, measured: the same sentence in English and in Chinese, how many
tokens each takes and how well the model predicts its own next tokens.

Shown in the tokens section in both languages (the page's CSS shows the one it speaks). The numbers
come from running the model on the two sentences when the app starts.
"""
from __future__ import annotations

import html
from typing import NamedTuple

import numpy as np

from model.trace import Trace

from .tokens import han_cost
from .words import both_html

SAMPLES = {"en": "The cat sat on the mat and looked out of the window at the rain.",
           "zh": "猫坐在垫子上，望着窗外的雨。"}


class SentenceCost(NamedTuple):
    text: str
    n_tokens: int
    n_units: int                # words (English) or Chinese characters
    mean_next_prob: float       # the mean probability the model gave each actual next token
    top1_hits: float            # the share of positions whose actual next token was the model's top guess


def next_token_probs(trace: Trace) -> np.ndarray:
    """(T-1,) the probability the model gave, at each position, to the token that actually followed."""
    z = trace.logits[:-1].astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    nxt = np.asarray(trace.token_ids[1:])
    return p[np.arange(len(nxt)), nxt]


def sentence_cost(trace: Trace, lang: str) -> SentenceCost:
    probs = next_token_probs(trace)
    top = trace.logits[:-1].argmax(axis=1) == np.asarray(trace.token_ids[1:])
    units = len(trace.prompt.split()) if lang == "en" else han_cost(trace.pieces)[0]
    return SentenceCost(trace.prompt, trace.T, units, float(probs.mean()), float(top.mean()))


def language_note_html(en: SentenceCost, zh: SentenceCost) -> str:
    """The note, escaped, in both languages."""
    e, z = (f'<q class="gg-sample">{html.escape(x.text)}</q>' for x in (en, zh))
    worse = zh.mean_next_prob < en.mean_next_prob
    how_en = "and the model predicts Chinese worse" if worse else "and the model predicts Chinese about as well"
    how_zh = "模型对中文的预测也更差" if worse else "模型对中文的预测与英文相差不大"
    text_en = (f"Small models like this one are trained mostly on English text. The same sentence takes {en.n_tokens} tokens in English "
               f"({en.n_tokens / max(en.n_units, 1):.1f} per word: {e}) and {zh.n_tokens} in Chinese "
               f"({zh.n_tokens / max(zh.n_units, 1):.1f} per character: {z}), {how_en}: "
               f"it gives the token that really comes next {en.mean_next_prob:.0%} on average in English, "
               f"{zh.mean_next_prob:.0%} in Chinese (its top guess is right {en.top1_hits:.0%} vs {zh.top1_hits:.0%} "
               f"of the time). Measured on this model when the app started.")
    text_zh = (f"像这样的小模型主要用英文文本训练。同一句话，英文用 {en.n_tokens} 个词元（每个单词 {en.n_tokens / max(en.n_units, 1):.1f} 个："
               f"{e}），中文用 {zh.n_tokens} 个（每个汉字 {zh.n_tokens / max(zh.n_units, 1):.1f} 个：{z}）；"
               f"{how_zh}：它给实际下一个词元的平均概率，英文为 {en.mean_next_prob:.0%}，"
               f"中文为 {zh.mean_next_prob:.0%}（首选预测猜中的比例：英文 {en.top1_hits:.0%}，中文 {zh.top1_hits:.0%}）。"
               f"这些数字是应用启动时在这个模型上测得的。")
    return f'<div class="gg-language-note">{both_html(text_en, text_zh, tag="p")}</div>'
