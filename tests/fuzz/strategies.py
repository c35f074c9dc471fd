"""Hypothesis strategies for vendor input: pure garbage, and the documents' samples mutated.

Garbage alone rarely gets past a parser's first check; a sample with a few bytes flipped, a
field dropped, a separator doubled or a 5,000-digit number spliced in reaches the deep paths
(counts, times, signatures, charsets) where untyped exceptions hide.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from hypothesis import strategies as st

T = TypeVar("T", bytes, str)

LONG_DIGITS = "9" * 5000
"""Longer than Python's int-from-text limit (4,300 digits): `int()` of it raises ValueError."""

TEXT_TOKENS: tuple[str, ...] = (
    ",",
    ";",
    ":",
    "#@#",
    "#@@#",
    " ",
    "\r\n",
    "\x00",
    "\u00a0",
    "\ufeff",
    '"',
    "{",
    "}",
    "[",
    "]",
    "null",
    "0",
    "1",
    "-1",
    "1 ",
    "1e999",
    "NaN",
    "Infinity",
    "sNaN",
    "١٢٣",
    "１２３",
    LONG_DIGITS,
    "2013-09-12 09:09:31",
    "9999-12-31 23:59:59",
    "0000-00-00 00:00:00",
    "error:",
    "success:",
    "DELIVRD",
    "UNDELIV",
    "成功",
    "参数错误",
    "no record",
)
BYTE_TOKENS: tuple[bytes, ...] = (
    *(token.encode("utf-8") for token in TEXT_TOKENS),
    b"\xff",
    b"\xfe\xff",
    b"\xef\xbb\xbf",
    b"\xe4\xb8",
    "退订".encode("gbk"),
    b"\x80",
)

# Charsets a vendor's Content-Type may declare: real, misspelt, not text encodings at all, or
# codecs whose decoding raises a plain UnicodeError rather than UnicodeDecodeError.
CHARSETS: tuple[str, ...] = (
    "utf-8",
    "UTF-8",
    "gbk",
    "gb2312",
    "gb18030",
    "big5",
    "latin-1",
    "utf-16",
    "utf-32",
    "utf-7",
    "utf-8-sig",
    "ascii",
    "idna",
    "punycode",
    "unicode_escape",
    "raw_unicode_escape",
    "rot13",
    "base64",
    "hex",
    "zlib",
    "uu",
    "undefined",
    "mbcs",
    "x-no-such-charset",
    "",
    " ",
    "utf\x008",
)


def charsets() -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), st.sampled_from(CHARSETS), st.text(max_size=12))


def mutated(
    seeds: Sequence[T], pieces: st.SearchStrategy[T], tokens: Sequence[T]
) -> st.SearchStrategy[T]:
    """A seed with up to six edits: a character replaced, a piece or token inserted, a slice
    deleted, doubled or cut off, a slice of another seed spliced in, or one of its separated
    fields replaced by a token."""

    @st.composite
    def build(draw: st.DrawFn) -> T:
        value = draw(st.sampled_from(seeds))
        for _ in range(draw(st.integers(0, 6))):
            start = draw(st.integers(0, len(value)))
            end = draw(st.integers(start, len(value)))
            edit = draw(st.sampled_from(EDITS))
            if edit == "replace":
                value = value[:start] + draw(pieces) + value[end:]
            elif edit == "token":
                value = value[:start] + draw(st.sampled_from(tokens)) + value[start:]
            elif edit == "delete":
                value = value[:start] + value[end:]
            elif edit == "double":
                value = value[:end] + value[start:end] + value[end:]
            elif edit == "cut":
                value = value[:start]
            elif edit == "field":
                value = replace_field(
                    value, draw(st.integers(0, 20)), draw(st.sampled_from(tokens))
                )
            else:
                other = draw(st.sampled_from(seeds))
                value = value[:start] + other[start:]
        return value

    return build()


EDITS = ("replace", "token", "delete", "double", "cut", "splice", "field", "field")
SEPARATORS = ("#@@#", "#@#", ",", ";", ":", '"', " ")


def replace_field(value: T, index: int, token: T) -> T:
    """`value` with one of its separated fields (CSV, records, JSON strings) made `token`."""
    for separator in SEPARATORS:
        sep = separator if isinstance(value, str) else separator.encode()
        parts = value.split(sep)  # type: ignore[arg-type]
        if len(parts) > 1:
            parts[index % len(parts)] = token
            return sep.join(parts)  # type: ignore[arg-type, return-value]
    return token


def replies(*seeds: str | bytes) -> st.SearchStrategy[bytes]:
    """Reply bodies: arbitrary bytes, or the samples (UTF-8 and GBK where they encode) mutated."""
    encoded = [s if isinstance(s, bytes) else s.encode("utf-8") for s in seeds]
    encoded += [s.encode("gbk") for s in seeds if isinstance(s, str) and gbk_encodes(s)]
    return st.one_of(
        st.binary(max_size=400),
        mutated(encoded, st.binary(max_size=8), BYTE_TOKENS),
    )


def gbk_encodes(text: str) -> bool:
    try:
        text.encode("gbk")
    except UnicodeEncodeError:
        return False
    return True


def texts(*seeds: str) -> st.SearchStrategy[str]:
    """Field values: arbitrary text, or the samples mutated."""
    return st.one_of(st.text(max_size=60), mutated(list(seeds), st.text(max_size=8), TEXT_TOKENS))


def fields(
    *seeds: Mapping[str, str], extra_keys: Sequence[str] = ()
) -> st.SearchStrategy[dict[str, str]]:
    """Push fields: arbitrary dictionaries over the documented keys, or a sample with keys
    dropped, added or swapped and values replaced or mutated."""
    keys = sorted({key for seed in seeds for key in seed} | set(extra_keys))
    any_key = st.one_of(st.sampled_from(keys), st.text(max_size=10))
    values = texts(*{value for seed in seeds for value in seed.values()})

    @st.composite
    def from_sample(draw: st.DrawFn) -> dict[str, str]:
        result = dict(draw(st.sampled_from(list(seeds))))
        for _ in range(draw(st.integers(0, 4))):
            edit = draw(st.sampled_from(FIELD_EDITS))
            present = sorted(result)
            if edit == "drop" and present:
                del result[draw(st.sampled_from(present))]
            elif edit == "swap" and len(present) > 1:
                a, b = draw(st.permutations(present))[:2]
                result[a], result[b] = result[b], result[a]
            else:
                result[draw(any_key)] = draw(values)
        return result

    return st.one_of(st.dictionaries(any_key, values, max_size=8), from_sample())


FIELD_EDITS = ("drop", "swap", "set")
