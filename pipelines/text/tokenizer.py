"""Pure-Python tokenizer following CoNLL-2003 / Penn Treebank conventions; no TensorFlow import.

The tokenizer is a short ordered list of regex substitutions (``_TOKENIZE_RULES``)
written once as templates and rendered to Python ``re`` and to RE2 (used by
``tf.strings.regex_replace`` in pipelines/text/tf_tokenizer.py). RE2 has no
lookaround or backreferences and different ``\\w``/``\\s``/``\\b``, so templates
only use explicit codepoint-range classes, alternation and capture groups; both
engines do leftmost-first, non-overlapping global replacement, so outputs are
identical.

Pipeline:

1. Lexer, one pass: at each position the first matching alternative is one
   token, padded with spaces; separator runs become spaces. In priority order:
   a leading list number (``1.`` of "1. Jordan", ``10=``), a stand-alone
   clitic (``'s`` in "Apple 's"), URLs, e-mail addresses, letter-dot chains
   (``U.S.``, ``p.m.``, ``U.S.-led``), known abbreviations and initials
   (``Inc.``, ``St.``, ``M.``), ``US$``-style currencies, signed and
   leading-dot numbers (``+1``, ``.500``), clock times (``1:54.342``), runs
   (``--``, ``...``), words with inner connectors (``1,000.50``,
   ``well-known``, ``AT&T``, ``km/h``, ``O'Neil``, ``don't``) and finally any
   single punctuation char.
2. Clitic split, one pass over the padded tokens (now space-delimited, so the
   token end is visible without lookahead): ``'s 'S 'm 'd 're 'll 've n't``
   and their ’ forms (``Apple's`` -> ``Apple 's``, ``don't`` -> ``do n't``);
   the same pass splits the period off an abbreviation or initial that ends
   the text (CoNLL writes "Corp ." there, "Corp. ," elsewhere).

Rules only insert spaces or replace separator runs with spaces, so every token
is a substring of the original text (tokenize_with_offsets relies on this).
"""

from __future__ import annotations

import re

TOKENIZER_VERSION = 2


def tokenizer_settings(cfg):
    """What vocab.json records of the tokenizer and word normalisation a vocabulary was built with."""
    return {"tokenizer_version": TOKENIZER_VERSION, "lowercase": cfg["lowercase"],
            "digits_to_zero": cfg["digits_to_zero"]}

_MAX_CP = 0x10FFFF

# --- character sets as (lo, hi) inclusive codepoint ranges -----------------

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
]

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


def _chars(s: str):
    return [(ord(c), ord(c)) for c in s]


# Word chars: ASCII alnum + every non-ASCII codepoint that is not punctuation
# or separator (so letters, marks, CJK, emoji are all "word").
_WORD = _normalize(
    _ASCII_ALNUM
    + _subtract([(0x80, _MAX_CP)], _SEPARATORS + _UNICODE_PUNCT + _SURROGATES)
)
_APOSTROPHES = "'\u2019"

_CLASSES = {
    "W": _WORD,
    "P": _normalize(_PUNCT),
    "SEP": _normalize(_SEPARATORS),
    "D": [(0x30, 0x39)],
    "AN": _ASCII_ALNUM,
    "ALPHA": [(0x41, 0x5A), (0x61, 0x7A)],
    "UPPER": [(0x41, 0x5A)],
    "APOS": _chars(_APOSTROPHES),
    # Kept inside a word when between two word chars (1,000.50 well-known AT&T km/h O'Neil).
    "CONN": _normalize(_chars("-.,&/" + _APOSTROPHES)),
    "URLC": _normalize(_WORD + _chars("-._~:/?#[]@!$&'()*+,;=%")),
    # A URL does not end in sentence punctuation or a closing bracket/quote.
    "URLEND": _normalize(_WORD + _chars("/_=#~%+&-")),
    "MAILC": _normalize(_WORD + _chars("._%+-")),
    "WS": [(0x09, 0x0D), (0x20, 0x20)],
    "BB": [(0x42, 0x42), (0x62, 0x62)],  # b B
    "RR": [(0x52, 0x52), (0x72, 0x72)],  # r R
}


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
    """Fill {W}, {P}, ... classes, {L:<chars>} literals, {I:<chars>} ASCII-caseless
    literals and {BOS}/{EOS} anchors; everything else is shared re/RE2 syntax."""

    def sub(m: re.Match) -> str:
        key = m.group(1)
        if key == "BOS":
            return "\\A"
        if key == "EOS":
            return "\\z" if engine == "re2" else "\\Z"  # absolute end in both
        if key.startswith("L:"):
            return "".join(_esc(ord(ch), engine) for ch in key[2:])
        if key.startswith("I:"):
            return "".join(_render_class(_chars(ch.lower() + ch.upper()), engine) for ch in key[2:])
        return _render_class(_CLASSES[key], engine)

    return re.sub(r"\{([A-Z]+|[LI]:[^}]+)\}", sub, template)


# Abbreviations that keep their period, from the CoNLL-2003 training data
# (vs. Inc. Corp. St. Calif. Oct. Dr. Fla. Mr. Nov. Mrs. Lt. vol. Aug. Rev.
# Dec.) plus titles, months and US states written the same way. Not "Co" and
# "No": CoNLL has "Co ." and "No.1". Also matched in upper case (ST.).
_ABBREVIATIONS = (
    "Mr Mrs Ms Dr Prof St Jr Sr Rev Gen Lt Col Capt Sgt Gov Sen Rep Inc Corp Ltd Bros "
    "Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec "
    "Ariz Calif Colo Conn Fla Mich Minn Okla Tenn Ave Mt Ft vs vol"
).split()


def _abbreviation_alternatives() -> str:
    words = sorted({v for a in _ABBREVIATIONS for v in (a, a.upper())}, key=lambda w: (-len(w), w))
    return "|".join(words)


# Rules: (pattern template, replacement). Replacements contain only literal
# chars and \N group refs, valid identically for re.sub and RE2 rewrites; a
# group that did not take part in the match is empty in both.
def _build_tokenize_rules() -> list[tuple[str, str]]:
    tail = "(?:{CONN}{W}+)*"  # 1,000.50 well-known rock'n'roll
    after_period = "{W}*" + tail  # U.S.-led, St.Louis, U.S.A
    clitic = "{APOS}(?:[sSmMdD]|[rR][eE]|[vV][eE]|[lL][lL])"
    token = "|".join([
        "(?:{I:http}{I:s}?://|{I:www}\\.){URLC}*{URLEND}",
        # Local part bounded (RFC 5321: 64) so a failed try costs O(64), not O(text).
        "{MAILC}{1,64}@{W}+(?:-{W}+)*(?:\\.{W}+(?:-{W}+)*)+",
        "{ALPHA}(?:\\.{ALPHA})+\\." + after_period,  # U.S. e.g. p.m. J.R.R.
        "(?:{UPPER}|" + _abbreviation_alternatives() + ")\\." + after_period,  # M. Jordan, Inc.
        "{UPPER}{1,3}\\$",  # US$ C$ HK$
        "\\+{D}{W}*" + tail,  # +1 +0.7 +12,696 (CoNLL splits the minus: - 5)
        "\\.{D}+",  # .500 batting averages
        "{D}+(?::{D}+)+{W}*" + tail,  # 9:30 1:54.342
        "-{2,}|\\.{2,}|\\*{2,}|={2,}|_{2,}",  # -- ... ** and separator lines
        "{W}+" + tail,
        "{P}",
    ])
    # No capture groups: a match's only context is spaces, so the whole match
    # (\0) can be padded and RE2 never runs its slower submatch engines.
    lexer = "|".join([
        # A ranked-list number opens the text: "1. Jordan", "10= Smith".
        "{BOS} *{D}+[.=] ",
        # Clitic already split off, as in CoNLL text joined with spaces.
        clitic + "(?: |{EOS})",
        token,
    ])
    split = "|".join([
        # Any clitic ending a token; one that is a token already just gains a space.
        "(" + clitic + "|[nN]{APOS}[tT]) ",
        # Final period of a text-final abbreviation/initial/list number ("Corp." -> Corp .).
        " ({AN}+)(\\.) *{EOS}",
    ])
    return [("{SEP}+", " "), (lexer, " \\0 "), (split, " \\1 \\2 \\3 ")]


_TOKENIZE_RULES = _build_tokenize_rules()

# <br>, <br/>, <br />, <BR> (IMDB markup) -> space.
_MARKUP_RULES = [("<{BB}{RR}{WS}*/?{WS}*>", " ")]


def render_rules(rules, engine: str) -> list[tuple[str, str]]:
    """Render rule templates for ``engine`` in {"python", "re2"}."""
    if engine not in ("python", "re2"):
        raise ValueError(f"unknown engine {engine!r}")
    # \0 (whole match) is RE2's spelling; in a Python replacement it would be NUL.
    return [(_render(p, engine), r if engine == "re2" else r.replace("\\0", "\\g<0>")) for p, r in rules]


def tokenize_rules(engine: str) -> list[tuple[str, str]]:
    return render_rules(_TOKENIZE_RULES, engine)


def markup_rules(engine: str) -> list[tuple[str, str]]:
    return render_rules(_MARKUP_RULES, engine)


_PY_TOKENIZE = [(re.compile(p), r) for p, r in tokenize_rules("python")]
_PY_MARKUP = [(re.compile(p), r) for p, r in markup_rules("python")]


# --- public API -------------------------------------------------------------------


def _padding_splitter(pattern: re.Pattern, repl: str):
    """`pattern.sub(" \\g<0> ", text)` as `" ".join(split on the pattern, captured)`: the same
    text, with the regex engine doing all the work (CPython's sub expands the template in
    Python once per match, i.e. once per token). Needs a pattern without groups."""
    if repl != " \\g<0> " or pattern.groups:
        return None
    splitter = re.compile(f"({pattern.pattern})", pattern.flags)
    return lambda text: " ".join(splitter.split(text))


_PY_TOKENIZE_STEPS = [_padding_splitter(p, r) or (lambda text, p=p, r=r: p.sub(r, text)) for p, r in _PY_TOKENIZE]


def tokenize(text: str) -> list[str]:
    for step in _PY_TOKENIZE_STEPS:
        text = step(text)
    return [t for t in text.split(" ") if t]


def tokenize_by_rules(text: str) -> list[str]:
    """`tokenize` applying every rule with `re.sub`, as written (what RE2 does in the SavedModel)."""
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
