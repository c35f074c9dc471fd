"""Unit tests: the vendor-neutral MMS, its validation per vendor and its encodings."""

from __future__ import annotations

import base64

import pytest

from worker.errors import FieldProblem, InvalidInput
from worker.mms import (
    FIVEC_MAX_CONTENT_BYTES,
    MMS_VALIDATORS,
    VEESING_MAX_BYTES,
    Frame,
    Media,
    Mms,
    encode_for_fivec,
    encode_for_veesing,
    fivec_problems,
    validate_for_fivec,
    validate_for_veesing,
    veesing_problems,
    veesing_size_bytes,
)

JPG = Media("jpg", b"\xff\xd8\xff\xe0 jpeg bytes")
GIF = Media("gif", b"GIF89a gif bytes")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def fields(problems: list[FieldProblem]) -> list[str]:
    return [problem.field for problem in problems]


def test_frames_given_as_a_list_are_kept_as_a_tuple_so_an_mms_is_hashable() -> None:
    mms = Mms("标题", [Frame(5, "文字")])

    assert mms.frames == (Frame(5, "文字"),)
    assert hash(mms) == hash(Mms("标题", (Frame(5, "文字"),)))


def test_media_bytes_stay_out_of_the_repr() -> None:
    assert "jpeg bytes" not in repr(Mms("t", [Frame(1, media=JPG)]))


# Veesing (its MMS document) ----------------------------------------------------------------------


def test_veesing_encodes_each_frame_as_seconds_then_media_then_gbk_text() -> None:
    mms = Mms(
        "中昱双十一大促",
        [Frame(5, "中昱维信双十一大促", JPG), Frame(3, "欢迎莅临采购", GIF)],
    )

    encoded = encode_for_veesing(mms)

    assert encoded == (
        f"5,jpg|{b64(JPG.data)},txt|{b64('中昱维信双十一大促'.encode('gbk'))};"
        f"3,gif|{b64(GIF.data)},txt|{b64('欢迎莅临采购'.encode('gbk'))}"
    )


def test_veesing_text_round_trips_through_base64_and_gbk() -> None:
    encoded = encode_for_veesing(Mms("t", [Frame(2, "欢迎莅临采购")]))

    seconds, file = encoded.split(",")
    kind, content = file.split("|")
    assert (seconds, kind) == ("2", "txt")
    assert base64.b64decode(content).decode("gbk") == "欢迎莅临采购"


def test_a_valid_veesing_mms_passes() -> None:
    validate_for_veesing(Mms("标题", [Frame(5, "文字", JPG), Frame(3, media=Media("mp4", b"v"))]))


def test_veesing_allows_15_frames_but_not_16() -> None:
    assert veesing_problems(Mms("t", [Frame(1, "a")] * 15)) == []

    with pytest.raises(InvalidInput) as caught:
        validate_for_veesing(Mms("t", [Frame(1, "a")] * 16))

    assert caught.value.problems == [FieldProblem("frames", "at most 15 frames")]


def test_veesing_allows_80_kb_in_all_but_not_one_byte_more() -> None:
    exact = Mms("t", [Frame(1, "ab", Media("jpg", b"x" * (VEESING_MAX_BYTES - 2)))])
    over = Mms("t", [Frame(1, "ab", Media("jpg", b"x" * (VEESING_MAX_BYTES - 1)))])

    assert veesing_size_bytes(exact) == 80 * 1024
    assert veesing_problems(exact) == []
    assert fields(veesing_problems(over)) == ["frames"]
    assert "81920 bytes (80 KB)" in veesing_problems(over)[0].rule


def test_veesing_counts_text_as_its_gbk_bytes() -> None:
    assert veesing_size_bytes(Mms("t", [Frame(1, "中文")])) == 4


def test_veesing_names_the_frame_whose_media_type_it_cannot_take() -> None:
    mms = Mms(
        "t", [Frame(1, "a"), Frame(1, "b"), Frame(1, "c"), Frame(1, media=Media("png", b"p"))]
    )

    with pytest.raises(InvalidInput) as caught:
        validate_for_veesing(mms)

    assert caught.value.problems == [
        FieldProblem("frames[3].media.type", "one of gif, jpg, mp3, mp4")
    ]
    assert "frames[3].media.type: one of gif, jpg, mp3, mp4" in str(caught.value)


def test_veesing_refuses_emoji_in_text_and_title() -> None:
    problems = veesing_problems(Mms("大促🎉", [Frame(1, "你好😀")]))

    assert fields(problems) == ["title", "frames[0].text"]
    assert "emoji" in problems[1].rule


def test_veesing_refuses_text_that_gbk_cannot_encode() -> None:
    problems = veesing_problems(Mms("t", [Frame(1, "ok"), Frame(1, "한국어")]))

    assert fields(problems) == ["frames[1].text"]
    assert "GBK" in problems[0].rule


@pytest.mark.parametrize(
    ("mms", "field"),
    [
        (Mms(" ", [Frame(1, "a")]), "title"),
        (Mms("t", []), "frames"),
        (Mms("t", [Frame(0, "a")]), "frames[0].seconds"),
        (Mms("t", [Frame(1)]), "frames[0]"),
        (Mms("t", [Frame(1, "")]), "frames[0].text"),
        (Mms("t", [Frame(1, media=Media("jpg", b""))]), "frames[0].media.data"),
    ],
    ids=["blank title", "no frames", "zero seconds", "empty frame", "empty text", "empty media"],
)
def test_every_vendor_refuses_an_mms_that_shows_nothing(mms: Mms, field: str) -> None:
    for validate in MMS_VALIDATORS.values():
        with pytest.raises(InvalidInput) as caught:
            validate(mms)
        assert field in fields(caught.value.problems)


def test_all_problems_are_reported_at_once() -> None:
    mms = Mms("", [Frame(0, "😀", Media("bmp", b"b"))] * 16)

    assert len(veesing_problems(mms)) > 16


# 5C (its MMS document, section 2.3) --------------------------------------------------------------


def test_fivec_names_each_file_by_frame_and_slot() -> None:
    mms = Mms(
        "标题",
        [
            Frame(5, "第一帧", Media("gif", b"g")),
            Frame(5, media=Media("mid", b"m")),
            Frame(5, "第三帧", Media("amr", b"a")),
        ],
    )

    assert encode_for_fivec(mms) == ";".join(
        [
            f"1_1.txt,{b64('第一帧'.encode())}",
            f"1_2.gif,{b64(b'g')}",
            f"2_3.mid,{b64(b'm')}",
            f"3_1.txt,{b64('第三帧'.encode())}",
            f"3_3.amr,{b64(b'a')}",
        ]
    )


def test_fivec_title_is_1_to_40_characters() -> None:
    frames = [Frame(1, "a")]
    assert fivec_problems(Mms("题" * 40, frames)) == []

    with pytest.raises(InvalidInput) as caught:
        validate_for_fivec(Mms("题" * 41, frames))

    assert caught.value.problems == [FieldProblem("title", "1 to 40 characters, is 41")]


@pytest.mark.parametrize("kind", ["mp4", "mp3", "png", "jpeg"])
def test_fivec_takes_only_gif_jpg_mid_and_amr(kind: str) -> None:
    problems = fivec_problems(Mms("t", [Frame(1, media=Media(kind, b"x"))]))

    assert fields(problems) == ["frames[0].media.type"]


def test_fivec_measures_50_kb_on_the_encoded_content() -> None:
    # 4 characters of base64 per 3 bytes of data, after the 8 characters of "1_2.jpg,".
    fits = (FIVEC_MAX_CONTENT_BYTES - len("1_2.jpg,")) // 4 * 3
    assert len(encode_for_fivec(Mms("t", [Frame(1, media=Media("jpg", b"x" * fits))]))) == 51200

    assert fivec_problems(Mms("t", [Frame(1, media=Media("jpg", b"x" * fits))])) == []
    too_big = fivec_problems(Mms("t", [Frame(1, media=Media("jpg", b"x" * (fits + 3)))]))
    assert fields(too_big) == ["frames"]
    assert "50 KB" in too_big[0].rule


def test_fivec_takes_text_that_gbk_cannot_encode_since_it_sends_utf8() -> None:
    assert fivec_problems(Mms("t", [Frame(1, "한국어")])) == []
