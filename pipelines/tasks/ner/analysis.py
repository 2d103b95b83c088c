"""NER error analysis and display helpers for the notebooks (pure Python + numpy, unit-tested).

:func:`ner_error_kinds` sorts predicted/gold entity spans into the usual error
kinds; :func:`entities_html` / :func:`compare_html` render spans in the style
of displaCy's manual mode.
"""

from __future__ import annotations

import colorsys
import hashlib
import html
from typing import Sequence

from pipelines.tasks.ner.labels import get_spans

ERROR_KINDS = (
    "correct",
    "wrong_type",
    "wrong_boundary",
    "wrong_type_and_boundary",
    "missed",
    "spurious",
)

Span = tuple  # (type, start, end_exclusive)


# ---------------------------------------------------------------------------
# NER error kinds


def _overlap(a: Span, b: Span) -> int:
    return max(0, min(a[2], b[2]) - max(a[1], b[1]))


def _classify_sentence(gold: list[Span], pred: list[Span]) -> list[tuple[str, Span | None, Span | None]]:
    """Pair spans of one sentence greedily and label each pairing / leftover.

    Order: exact matches, then same boundaries (other type), then the largest
    overlap (ties: leftmost gold, then leftmost prediction). Every span is
    used at most once; unpaired gold spans are ``missed`` and unpaired
    predictions ``spurious`` (also when they overlap a gold span that was
    already paired with a better prediction), so the counts always add up to
    the number of gold / predicted spans.
    """
    free_g = set(range(len(gold)))
    free_p = set(range(len(pred)))
    out: list[tuple[str, Span | None, Span | None]] = []

    def pair(gi: int, pi: int, kind: str) -> None:
        free_g.discard(gi)
        free_p.discard(pi)
        out.append((kind, gold[gi], pred[pi]))

    # 1. exact and 2. same-boundary matches.
    for exact in (True, False):
        for gi in sorted(free_g):
            g = gold[gi]
            for pi in sorted(free_p):
                p = pred[pi]
                if (p[1], p[2]) == (g[1], g[2]) and (p[0] == g[0]) == exact:
                    pair(gi, pi, "correct" if exact else "wrong_type")
                    break

    # 3. largest overlap first.
    candidates = sorted(
        (
            (-_overlap(gold[gi], pred[pi]), gold[gi][1], pred[pi][1], gi, pi)
            for gi in free_g
            for pi in free_p
            if _overlap(gold[gi], pred[pi]) > 0
        ),
    )
    for _, _, _, gi, pi in candidates:
        if gi in free_g and pi in free_p:
            same_type = gold[gi][0] == pred[pi][0]
            pair(gi, pi, "wrong_boundary" if same_type else "wrong_type_and_boundary")

    out.extend(("missed", gold[gi], None) for gi in sorted(free_g))
    out.extend(("spurious", None, pred[pi]) for pi in sorted(free_p))
    # Reading order, for the examples.
    out.sort(key=lambda r: min(s[1] for s in (r[1], r[2]) if s is not None))
    return out


def ner_error_kinds(gold_tags, pred_tags, scheme: str = "IOB2", max_examples: int = 5) -> dict:
    """Count entity-level error kinds over a corpus.

    ``gold_tags`` / ``pred_tags``: per-sentence tag lists in ``scheme``.
    Returns ``{"counts": {kind: n}, "examples": {kind: [...]}}`` where each
    example is ``{"sentence": i, "gold": span or None, "pred": span or None}``
    (at most ``max_examples`` per kind, in corpus order) and spans are
    ``(type, start, end_exclusive)`` tuples as from :func:`conll.get_spans`.
    """
    if max_examples < 0:
        raise ValueError(f"max_examples must be >= 0, got {max_examples}")
    gold_tags = list(gold_tags)
    pred_tags = list(pred_tags)
    if len(gold_tags) != len(pred_tags):
        raise ValueError(
            f"gold has {len(gold_tags)} sentences but predictions have {len(pred_tags)}"
        )
    counts = {kind: 0 for kind in ERROR_KINDS}
    examples: dict[str, list[dict]] = {kind: [] for kind in ERROR_KINDS}
    for i, (g_tags, p_tags) in enumerate(zip(gold_tags, pred_tags)):
        if len(g_tags) != len(p_tags):
            raise ValueError(
                f"sentence {i}: gold has {len(g_tags)} tags but prediction has {len(p_tags)}"
            )
        gold = [tuple(s) for s in get_spans(list(g_tags), scheme)]
        pred = [tuple(s) for s in get_spans(list(p_tags), scheme)]
        for kind, g, p in _classify_sentence(gold, pred):
            counts[kind] += 1
            if len(examples[kind]) < max_examples:
                examples[kind].append({"sentence": i, "gold": g, "pred": p})
    return {"counts": counts, "examples": examples}


# ---------------------------------------------------------------------------
# HTML rendering (displaCy manual style)

ENTITY_COLOURS = {
    "PER": "#aa9cfc",
    "LOC": "#ff9561",
    "ORG": "#7aecec",
    "MISC": "#f0d0ff",
}

_DIV_STYLE = "line-height: 2.5; direction: ltr; margin-bottom: 0.5em"
_MARK_STYLE = (
    "background: {bg}; padding: 0.45em 0.6em; margin: 0 0.25em; "
    "line-height: 1; border-radius: 0.35em;"
)
_LABEL_STYLE = (
    "font-size: 0.8em; font-weight: bold; line-height: 1; border-radius: 0.35em; "
    "vertical-align: middle; margin-left: 0.5rem"
)
_CAPTION_STYLE = "font-weight: bold; font-size: 0.9em; color: #555"


def entity_colour(entity_type: str) -> str:
    """Fixed colour for PER/LOC/ORG/MISC; a stable pastel from a hash otherwise."""
    if entity_type in ENTITY_COLOURS:
        return ENTITY_COLOURS[entity_type]
    # md5, not hash(): Python's str hash is salted per process.
    hue = int(hashlib.md5(entity_type.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    r, g, b = colorsys.hls_to_rgb(hue, 0.8, 0.7)
    return "#{:02x}{:02x}{:02x}".format(round(r * 255), round(g * 255), round(b * 255))


def _check_spans(spans, n_tokens: int) -> list[Span]:
    out = [(str(t), int(s), int(e)) for t, s, e in spans]
    out.sort(key=lambda sp: (sp[1], sp[2]))
    prev_end = 0
    for typ, start, end in out:
        if not 0 <= start < end <= n_tokens:
            raise ValueError(f"span {(typ, start, end)} out of range for {n_tokens} tokens")
        if start < prev_end:
            raise ValueError(f"span {(typ, start, end)} overlaps the previous span")
        prev_end = end
    return out


def entities_html(tokens: Sequence[str], spans, label: str | None = None) -> str:
    """Tokens in a ``<div>``; each ``(type, start, end)`` span in a coloured ``<mark>``.

    Spans must lie within the tokens and not overlap. ``label`` is an optional
    caption shown above the tokens. All text is HTML-escaped.
    """
    tokens = [str(t) for t in tokens]
    spans = _check_spans(spans, len(tokens))
    parts: list[str] = []
    if label is not None:
        parts.append(
            f'<div class="entities-caption" style="{_CAPTION_STYLE}">{html.escape(str(label))}</div>'
        )
    pos = 0
    for typ, start, end in spans:
        parts.extend(html.escape(t) for t in tokens[pos:start])
        text = " ".join(html.escape(t) for t in tokens[start:end])
        parts.append(
            f'<mark class="entity" style="{_MARK_STYLE.format(bg=entity_colour(typ))}">'
            f"{text}"
            f'<span style="{_LABEL_STYLE}">{html.escape(typ)}</span>'
            "</mark>"
        )
        pos = end
    parts.extend(html.escape(t) for t in tokens[pos:])
    return f'<div class="entities" style="{_DIV_STYLE}">' + " ".join(parts) + "</div>"


def compare_html(tokens: Sequence[str], gold_spans, pred_spans) -> str:
    """Gold and predicted entities one above the other."""
    return (
        '<div class="entities-compare">'
        + entities_html(tokens, gold_spans, label="gold")
        + entities_html(tokens, pred_spans, label="predicted")
        + "</div>"
    )
