"""Page text in English and Chinese. Panel explanations live in assets/explanations/*.json."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

LANGUAGES = {"English": "en", "中文": "zh"}
EXPLAINED_PANELS = ("tokens", "embeddings", "layers", "attention", "mlp", "logit_lens", "distribution", "kv_cache",
                    "model_card", "ablation", "compare", "residual_path", "attribution")
ASSETS = Path(__file__).resolve().parents[1] / "assets"

HEADINGS = {
    "tokens": {"en": "1 · Tokens", "zh": "1 · 词元"},
    "embeddings": {"en": "2 · Embeddings", "zh": "2 · 嵌入向量"},
    "layers": {"en": "3 · Layers: the residual stream", "zh": "3 · 逐层：残差流"},
    "attention": {"en": "4 · Attention", "zh": "4 · 注意力"},
    "mlp": {"en": "5 · MLP", "zh": "5 · MLP（前馈网络）"},
    "logit_lens": {"en": "6 · Logit lens: the prediction forming", "zh": "6 · Logit 透镜：预测如何逐层形成"},
    "distribution": {"en": "7 · Next token: distribution and sampling", "zh": "7 · 下一个词元：分布与采样"},
    "kv_cache": {"en": "7b · Generation and the KV cache", "zh": "7b · 生成与 KV 缓存"},
    "model_card": {"en": "8 · The model", "zh": "8 · 模型信息"},
    "ablation": {"en": "9 · Ablation: switch parts off", "zh": "9 · 消融：关掉模型的一部分"},
    "compare": {"en": "10 · Compare two prompts", "zh": "10 · 比较两个提示词"},
    "residual_path": {"en": "11 · The residual stream's path", "zh": "11 · 残差流的路径"},
    "attribution": {"en": "12 · Who wrote the answer: attribution and patching", "zh": "12 · 答案是谁写的：归因与修补"},
}


def lang_code(language: str | None) -> str:
    """The radio's "English" / "中文" (or a code) as "en" / "zh"; anything else is English."""
    if language in LANGUAGES.values():
        return language
    return LANGUAGES.get(language or "English", "en")


@lru_cache(maxsize=None)
def explanation(panel: str, lang: str) -> str:
    path = ASSETS / "explanations" / f"{panel}.json"
    try:
        texts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return texts.get(lang) or texts.get("en", "")


def heading(panel: str, lang: str) -> str:
    return f"### {HEADINGS[panel][lang]}"
