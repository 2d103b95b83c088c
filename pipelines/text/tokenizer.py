"""Pure-Python tokenizer (CoNLL-2003/Reuters-like); no TensorFlow import.

The tokenizer is an ordered list of regex substitutions (``_TOKENIZE_RULES``)
written once as templates and rendered to Python ``re`` and to RE2 (used by
``tf.strings.regex_replace`` in pipelines/tf_tokenizer.py). RE2 has no
lookaround and different ``\\w``/``\\s``/``\\b``, so templates only use explicit
codepoint-range classes and capture groups; both engines do leftmost,
non-overlapping global replacement, so outputs are identical.

Pipeline: whitespace -> ' '; protect connectors between word chars with
private-use placeholders; keep single-letter abbreviations (``U.S.``) whole;
split the ``n't`` clitic; pad every remaining punctuation char with spaces;
restore placeholders; split on ' '. Rules only insert spaces, replace
separator runs with one space, or swap placeholders back, so every token is
a substring of the original text.
"""

from __future__ import annotations

import re

TOKENIZER_VERSION = 1


def tokenizer_settings(cfg):
    """What vocab.json records of the tokenizer and word normalisation a vocabulary was built with."""
    return {"tokenizer_version": TOKENIZER_VERSION, "lowercase": cfg["lowercase"],
            "digits_to_zero": cfg["digits_to_zero"]}

_MAX_CP = 0x10FFFF

# --- character sets as (lo, hi) inclusive codepoint ranges -----------------

# Placeholders for protected connectors. Any occurrence in the input is
# treated as a separator so a restored placeholder can never be confused
# with user text (keeps tokens substrings of the input).
_PLACEHOLDER_BASE = 0xE000
_PLACEHOLDER_RANGE = [(0xE000, 0xE00F)]

# Connectors kept inside a token when between two word chars.
_CONNECTORS = ["-", "'", "\u2019", ".", ",", "&", "/"]
assert len(_CONNECTORS) <= 16

_SEPARATORS = [
    (0x00, 0x20),  # ASCII whitespace + other C0 controls (never token content)
    (0x7F, 0xA0),  # DEL, C1 controls incl. \x85, nbsp
    (0x1680, 0x1680),
    (0x2000, 0x200B),  # en quad .. hair space, zero-width space
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
    (0xFEFF, 0xFEFF),
] + _PLACEHOLDER_RANGE

_UNICODE_PUNCT = [
    (0x00A1, 0x00A1),  # ¡
    (0x00AB, 0x00AB),  # «
    (0x00B4, 0x00B4),  # ´
    (0x00BB, 0x00BB),  # »
    (0x00BF, 0x00BF),  # ¿
    (0x2010, 0x2015),  # hyphens, ‒ – — ―
    (0x2018, 0x201F),  # ‘ ’ ‚ ‛ “ ” „ ‟
    (0x2020, 0x2022),  # † ‡ •
    (0x2026, 0x2026),  # …
    (0x2032, 0x2033),  # ′ ″
    (0x2039, 0x203A),  # ‹ ›
    (0x3001, 0x3002),  # 、 。
    (0xFF01, 0xFF01),  # ！
    (0xFF08, 0xFF09),  # （ ）
    (0xFF0C, 0xFF0C),  # ，
    (0xFF1A, 0xFF1B),  # ： ；
    (0xFF1F, 0xFF1F),  # ？
]

_ASCII_PUNCT = [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)]
_PUNCT = _ASCII_PUNCT + _UNICODE_PUNCT
_ASCII_ALNUM = [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)]
_SURROGATES = [(0xD800, 0xDFFF)]  # not encodable in UTF-8; keep RE2 classes valid


def _normalize(ranges):
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _subtract(base, remove):
    remove = _normalize(remove)
    out = []
    for lo, hi in _normalize(base):
        cur = lo
        for rlo, rhi in remove:
            if rhi < cur or rlo > hi:
                continue
            if rlo > cur:
                out.append((cur, rlo - 1))
            cur = max(cur, rhi + 1)
        if cur <= hi:
            out.append((cur, hi))
    return out


# Word chars: ASCII alnum + every non-ASCII codepoint that is not punctuation,
# separator or placeholder (so letters, marks, CJK, emoji are all "word").
_WORD = _normalize(
    _ASCII_ALNUM
    + _subtract([(0x80, _MAX_CP)], _SEPARATORS + _UNICODE_PUNCT + _SURROGATES)
)
# After whitespace normalisation, a "non-word boundary" char is ' ' or punct.
_BOUNDARY = _normalize([(0x20, 0x20)] + _PUNCT)

_CLASSES = {
    "W": _WORD,
    "P": _normalize(_PUNCT),
    "SEP": _normalize(_SEPARATORS),
    "B": _BOUNDARY,
    "ALPHA": [(0x41, 0x5A), (0x61, 0x7A)],
    "NN": [(0x4E, 0x4E), (0x6E, 0x6E)],  # n N
    "TT": [(0x54, 0x54), (0x74, 0x74)],  # t T
    "APOS": [(_PLACEHOLDER_BASE + _CONNECTORS.index(c),) * 2 for c in ("'", "\u2019")],
    "WS": [(0x09, 0x0D), (0x20, 0x20)],
    "BB": [(0x42, 0x42), (0x62, 0x62)],  # b B
    "RR": [(0x52, 0x52), (0x72, 0x72)],  # r R
}


def _placeholder(c: str) -> str:
    return chr(_PLACEHOLDER_BASE + _CONNECTORS.index(c))


# --- rendering ------------------------------------------------------------------


def _esc(cp: int, engine: str) -> str:
    if engine == "re2":
        return "\\x{%X}" % cp
    return "\\u%04X" % cp if cp <= 0xFFFF else "\\U%08X" % cp


def _render_class(ranges, engine: str) -> str:
    parts = []
    for lo, hi in ranges:
        parts.append(_esc(lo, engine) if lo == hi else _esc(lo, engine) + "-" + _esc(hi, engine))
    return "[" + "".join(parts) + "]"


def _render(template: str, engine: str) -> str:
    """Fill {W}, {P}, ... classes, {L:<char>} literals and {BOS}/{EOS} anchors."""

    def sub(m: re.Match) -> str:
        key = m.group(1)
        if key == "BOS":
            return "\\A"
        if key == "EOS":
            return "\\z" if engine == "re2" else "\\Z"  # absolute end in both
        if key.startswith("L:"):
            return "".join(_esc(ord(ch), engine) for ch in key[2:])
        return _render_class(_CLASSES[key], engine)

    return re.sub(r"\{([A-Z]+|L:[^}]+)\}", sub, template)


# Rules: (pattern template, replacement). Replacements contain only literal
# chars and \N group refs, valid identically for re.sub and RE2 rewrites.
def _build_tokenize_rules() -> list[tuple[str, str]]:
    rules = [("{SEP}+", " ")]
    for c in _CONNECTORS:
        rule = ("({W}){L:%s}({W})" % c, "\\1" + _placeholder(c) + "\\2")
        # Twice: non-overlapping matching skips every 2nd connector in a-b-c.
        rules += [rule, rule]
    dot = _placeholder(".")
    # Single-letter abbreviations keep their final period: U.S. e.g. J.R.
    # The boundary before the first letter is consumed as group 1.
    rules.append(
        (
            "({BOS}|{B})({ALPHA}){L:%s}((?:{ALPHA}{L:%s})*{ALPHA}){L:.}" % (dot, dot),
            "\\1\\2" + dot + "\\3" + dot,
        )
    )
    # Clitic n't (don't -> do n't): the apostrophe is already a placeholder.
    rules.append(("({W})({NN})({APOS})({TT})({EOS}|{B})", "\\1 \\2\\3\\4\\5"))
    rules.append(("({P})", " \\1 "))
    for c in _CONNECTORS:
        rules.append(("{L:%s}" % _placeholder(c), c))
    return rules


_TOKENIZE_RULES = _build_tokenize_rules()

# <br>, <br/>, <br />, <BR> (IMDB markup) -> space.
_MARKUP_RULES = [("<{BB}{RR}{WS}*/?{WS}*>", " ")]


def render_rules(rules, engine: str) -> list[tuple[str, str]]:
    """Render rule templates for ``engine`` in {"python", "re2"}."""
    if engine not in ("python", "re2"):
        raise ValueError(f"unknown engine {engine!r}")
    return [(_render(p, engine), r) for p, r in rules]


def tokenize_rules(engine: str) -> list[tuple[str, str]]:
    return render_rules(_TOKENIZE_RULES, engine)


def markup_rules(engine: str) -> list[tuple[str, str]]:
    return render_rules(_MARKUP_RULES, engine)


_PY_TOKENIZE = [(re.compile(p), r) for p, r in tokenize_rules("python")]
_PY_MARKUP = [(re.compile(p), r) for p, r in markup_rules("python")]


# --- public API -------------------------------------------------------------------


def tokenize(text: str) -> list[str]:
    for pat, repl in _PY_TOKENIZE:
        text = pat.sub(repl, text)
    return [t for t in text.split(" ") if t]


def tokenize_with_offsets(text: str) -> list[tuple[str, int, int]]:
    """Tokens with (start, end) offsets such that text[start:end] == token."""
    out = []
    pos = 0
    for tok in tokenize(text):
        # Only separators/split points lie between tokens and tokens never
        # contain separators, so the first match from pos is the right one.
        start = text.find(tok, pos)
        if start < 0:  # pragma: no cover - would mean a rule broke the invariant
            raise AssertionError(f"token {tok!r} not found in text after {pos}")
        pos = start + len(tok)
        out.append((tok, start, pos))
    return out


_LOWER = {i: i + 32 for i in range(0x41, 0x5B)}  # ASCII-only, like tf.strings.lower
_DIGITS = {i: 0x30 for i in range(0x30, 0x3A)}
_LOWER_DIGITS = {**_LOWER, **_DIGITS}


def normalize_word(token: str, lowercase: bool, digits_to_zero: bool) -> str:
    if lowercase and digits_to_zero:
        return token.translate(_LOWER_DIGITS)
    if lowercase:
        return token.translate(_LOWER)
    if digits_to_zero:
        return token.translate(_DIGITS)
    return token


def clean_markup(text: str) -> str:
    for pat, repl in _PY_MARKUP:
        text = pat.sub(repl, text)
    return text
