"""One vendor-neutral MMS, and what each vendor's document allows of it and makes of it.

An `Mms` is a title and frames; a `Frame` shows for some seconds an optional text and an optional
media file (one per frame, as Veesing requires; 5C would allow an image and an audio, but one
model for both vendors keeps a job sendable through either). Each vendor has a validator, which
raises `InvalidInput` naming every broken rule by its field path (`frames[3].media.type`), and an
encoder, which writes the vendor's `content` field.

The encoders live here rather than in the vendor modules because a limit and the encoding it
measures belong together: 5C's 50 KB is the length of the encoded `content` field, so its
validator must encode, and `worker.vendors` may import this module but not the other way round.
Validation runs at enqueue (docs/design.md, promise 6) and again in the adapters before a call.

The rules: docs/vendors.md (Veesing MMS: "内容格式定义"; 5C MMS: sections 2.1 and 2.3).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from worker.errors import FieldProblem, InvalidInput

EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, flags, extended symbols
    "\u2600-\u27bf"  # miscellaneous symbols and dingbats
    "\u2300-\u23ff"  # technical symbols drawn as emoji (⌚, ⏰)
    "\u2b00-\u2bff"  # arrows and stars drawn as emoji (⭐)
    "\ufe0f\u200d\u20e3"  # emoji presentation selector, joiner, keycap
    "]"
)
"""Characters the vendors refuse as emoji, for every channel (SMS rules use it too)."""

KB = 1024

VEESING_MAX_FRAMES = 15
VEESING_MAX_BYTES = 80 * KB
VEESING_MEDIA_TYPES = frozenset({"jpg", "gif", "mp4", "mp3"})
VEESING_TEXT_ENCODING = "gbk"

FIVEC_MAX_CONTENT_BYTES = 50 * KB
FIVEC_IMAGE_TYPES = frozenset({"jpg", "gif"})
FIVEC_AUDIO_TYPES = frozenset({"mid", "amr"})
FIVEC_TITLE_MAX_CHARS = 40
FIVEC_TEXT_ENCODING = "utf-8"


@dataclass(frozen=True)
class Media:
    """One media file: `type` is its file type as the vendors name it ("jpg", "mp3", "amr")."""

    type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Frame:
    """One page of the MMS: shown for `seconds`, with a text, a media file, or both."""

    seconds: int
    text: str | None = None
    media: Media | None = None


@dataclass(frozen=True)
class Mms:
    title: str
    frames: tuple[Frame, ...]

    def __init__(self, title: str, frames: Sequence[Frame]) -> None:
        object.__setattr__(self, "title", title)
        object.__setattr__(self, "frames", tuple(frames))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _common_problems(mms: Mms) -> list[FieldProblem]:
    """Rules every vendor shares: a title, at least one frame, each frame shows something."""
    problems: list[FieldProblem] = []
    if not mms.title.strip():
        problems.append(FieldProblem("title", "must not be empty"))
    if not mms.frames:
        problems.append(FieldProblem("frames", "at least 1 frame"))
    for index, frame in enumerate(mms.frames):
        at = f"frames[{index}]"
        if isinstance(frame.seconds, bool) or not isinstance(frame.seconds, int):
            problems.append(FieldProblem(f"{at}.seconds", "must be a whole number of seconds"))
        elif frame.seconds < 1:
            problems.append(FieldProblem(f"{at}.seconds", "at least 1 second"))
        if frame.text is None and frame.media is None:
            problems.append(FieldProblem(at, "needs a text, a media file or both"))
        if frame.text is not None and not frame.text.strip():
            problems.append(FieldProblem(f"{at}.text", "must not be empty (leave it out instead)"))
        if frame.media is not None and not frame.media.data:
            problems.append(FieldProblem(f"{at}.media.data", "must not be empty"))
    return problems


def _emoji_problem(at: str, text: str) -> FieldProblem | None:
    found = EMOJI.search(text)
    if found is None:
        return None
    return FieldProblem(at, f"emoji are not allowed: {found.group()!r} at position {found.start()}")


def _raise_if(problems: list[FieldProblem]) -> None:
    if problems:
        raise InvalidInput(problems)


# Veesing (its MMS document) ----------------------------------------------------------------------


def veesing_size_bytes(mms: Mms) -> int:
    """The MMS's size as Veesing's 80 KB rule counts it: the files themselves (text as GBK),
    before base64. Text that GBK cannot encode counts as its UTF-8 bytes (it is refused anyway).
    """
    total = 0
    for frame in mms.frames:
        if frame.text is not None:
            try:
                total += len(frame.text.encode(VEESING_TEXT_ENCODING))
            except UnicodeEncodeError:
                total += len(frame.text.encode("utf-8"))
        if frame.media is not None:
            total += len(frame.media.data)
    return total


def veesing_problems(mms: Mms) -> list[FieldProblem]:
    problems = _common_problems(mms)
    title_emoji = _emoji_problem("title", mms.title)
    if title_emoji is not None:
        problems.append(title_emoji)
    if len(mms.frames) > VEESING_MAX_FRAMES:
        problems.append(FieldProblem("frames", f"at most {VEESING_MAX_FRAMES} frames"))
    for index, frame in enumerate(mms.frames):
        at = f"frames[{index}]"
        if frame.text is not None:
            emoji = _emoji_problem(f"{at}.text", frame.text)
            if emoji is not None:
                problems.append(emoji)
            else:
                try:
                    frame.text.encode(VEESING_TEXT_ENCODING)
                except UnicodeEncodeError as exc:
                    problems.append(
                        FieldProblem(
                            f"{at}.text",
                            f"must be encodable in GBK: {exc.object[exc.start : exc.end]!r} "
                            f"at position {exc.start} is not",
                        )
                    )
        if frame.media is not None and frame.media.type not in VEESING_MEDIA_TYPES:
            problems.append(
                FieldProblem(f"{at}.media.type", f"one of {', '.join(sorted(VEESING_MEDIA_TYPES))}")
            )
    size = veesing_size_bytes(mms)
    if size > VEESING_MAX_BYTES:
        problems.append(
            FieldProblem("frames", f"at most {VEESING_MAX_BYTES} bytes (80 KB) in all, is {size}")
        )
    return problems


def validate_for_veesing(mms: Mms) -> None:
    """Raise `InvalidInput` listing every rule of the Veesing MMS document the MMS breaks."""
    _raise_if(veesing_problems(mms))


def encode_for_veesing(mms: Mms) -> str:
    """Veesing's `content`: `seconds,type|base64,txt|base64;...`, text as GBK then base64.

    Within a frame the media file comes before the text, as in the document's example; frames
    are joined by `;` with none after the last, as its Java sample does. Validate first.
    """
    frames: list[str] = []
    for frame in mms.frames:
        files: list[str] = []
        if frame.media is not None:
            files.append(f"{frame.media.type}|{_b64(frame.media.data)}")
        if frame.text is not None:
            files.append(f"txt|{_b64(frame.text.encode(VEESING_TEXT_ENCODING))}")
        frames.append(",".join([str(frame.seconds), *files]))
    return ";".join(frames)


# 5C (its MMS document) ---------------------------------------------------------------------------


def encode_for_fivec(mms: Mms) -> str:
    """5C's `content` (section 2.3): `1_1.txt,base64;1_2.gif,base64;2_1.txt,...`.

    Frame n's text is `n_1.txt` (UTF-8, then base64), its image `n_2.<type>`, its audio
    `n_3.<type>`; elements are separated by `;`, name and content by `,`. 5C has no per-frame
    duration, so `Frame.seconds` is not sent. Validate first.
    """
    elements: list[str] = []
    for number, frame in enumerate(mms.frames, start=1):
        if frame.text is not None:
            elements.append(f"{number}_1.txt,{_b64(frame.text.encode(FIVEC_TEXT_ENCODING))}")
        if frame.media is not None:
            slot = 2 if frame.media.type in FIVEC_IMAGE_TYPES else 3
            elements.append(f"{number}_{slot}.{frame.media.type},{_b64(frame.media.data)}")
    return ";".join(elements)


def fivec_title_problems(title: str) -> list[FieldProblem]:
    """Section 2.1: a title of 1 to 40 characters (counted before URL-encoding)."""
    if not 1 <= len(title) <= FIVEC_TITLE_MAX_CHARS:
        return [FieldProblem("title", f"1 to {FIVEC_TITLE_MAX_CHARS} characters, is {len(title)}")]
    return []


def fivec_problems(mms: Mms) -> list[FieldProblem]:
    problems = _common_problems(mms)
    if mms.title.strip():
        problems += fivec_title_problems(mms.title)
    media_types = FIVEC_IMAGE_TYPES | FIVEC_AUDIO_TYPES
    for index, frame in enumerate(mms.frames):
        at = f"frames[{index}]"
        if frame.text is not None:
            try:
                frame.text.encode(FIVEC_TEXT_ENCODING)
            except UnicodeEncodeError:
                problems.append(FieldProblem(f"{at}.text", "must be encodable in UTF-8"))
        if frame.media is not None and frame.media.type not in media_types:
            problems.append(
                FieldProblem(
                    f"{at}.media.type",
                    "an image (gif, jpg) or an audio (mid, amr)",
                )
            )
    try:
        size = len(encode_for_fivec(mms))
    except UnicodeEncodeError:
        return problems  # already named above; the size cannot be measured
    if size > FIVEC_MAX_CONTENT_BYTES:
        problems.append(
            FieldProblem(
                "frames", f"at most {FIVEC_MAX_CONTENT_BYTES} bytes (50 KB) once encoded, is {size}"
            )
        )
    return problems


def validate_for_fivec(mms: Mms) -> None:
    """Raise `InvalidInput` listing every rule of the 5C MMS document the MMS breaks."""
    _raise_if(fivec_problems(mms))


MMS_VALIDATORS: Mapping[str, Callable[[Mms], None]] = {
    "veesing": validate_for_veesing,
    "fivec": validate_for_fivec,
}
"""The validator of each MMS vendor, by the vendor name the settings use."""


# Stored form -------------------------------------------------------------------------------------


def mms_to_payload(mms: Mms) -> dict[str, Any]:
    """The MMS as JSON for the job store (media as base64)."""
    return {
        "title": mms.title,
        "frames": [
            {
                "seconds": frame.seconds,
                "text": frame.text,
                "media": None
                if frame.media is None
                else {"type": frame.media.type, "base64": _b64(frame.media.data)},
            }
            for frame in mms.frames
        ],
    }


def mms_from_payload(payload: Mapping[str, Any]) -> Mms:
    return Mms(
        payload["title"],
        [
            Frame(
                seconds=frame["seconds"],
                text=frame.get("text"),
                media=None if frame.get("media") is None else media_from_payload(frame["media"]),
            )
            for frame in payload["frames"]
        ],
    )


def media_from_payload(media: Mapping[str, str]) -> Media:
    return Media(media["type"], base64.b64decode(media["base64"]))
