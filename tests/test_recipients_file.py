"""Unit tests of reading a file of recipients (worker/recipients_file.py): what `herald send
sms --to-file` and `POST /v1/sms/file` both accept."""

from __future__ import annotations

import codecs

import pytest

from worker.errors import FieldProblem, InvalidInput
from worker.recipients_file import describe, read_recipients


def problems_of(data: bytes) -> list[FieldProblem]:
    with pytest.raises(InvalidInput) as refused:
        read_recipients(data)
    return refused.value.problems


def test_one_number_a_line_is_normalised_and_blank_lines_are_skipped() -> None:
    parsed = read_recipients(b"13800138000\n\n+86 139 0013 9000\r\n  0086-137-0013-7000  \n\n")

    assert [(r.line, r.phone, r.values) for r in parsed.recipients] == [
        (1, "13800138000", {}),
        (3, "13900139000", {}),
        (4, "13700137000", {}),
    ]
    assert parsed.columns == []


def test_a_header_names_the_phone_column_and_the_other_columns_give_values() -> None:
    data = "name,手机号,code\n张三,13800138000,4821\n李四,13900139000,\n"

    parsed = read_recipients(data.encode())

    assert parsed.columns == ["name", "code"]
    assert [(r.line, r.phone, r.values) for r in parsed.recipients] == [
        (2, "13800138000", {"name": "张三", "code": "4821"}),
        (3, "13900139000", {"name": "李四"}),  # an empty cell is no value
    ]


@pytest.mark.parametrize("name", ["phone", "Mobile", "NUMBER", "手机号"])
def test_each_documented_phone_column_name_is_found_wherever_it_is(name: str) -> None:
    parsed = read_recipients(f"code,{name}\n1,13800138000\n".encode())

    assert parsed.recipients[0].phone == "13800138000"
    assert parsed.recipients[0].values == {"code": "1"}


def test_a_header_without_a_phone_column_name_has_the_number_first() -> None:
    parsed = read_recipients(b"who,code\n13800138000,1\n")

    assert (parsed.recipients[0].phone, parsed.columns) == ("13800138000", ["code"])


@pytest.mark.parametrize(
    "encoded",
    [
        codecs.BOM_UTF8 + "phone,name\n13800138000,张三\n".encode(),
        "phone,name\n13800138000,张三\n".encode("gbk"),
        "phone,name\n13800138000,张三\n".encode("gb18030"),
        "phone\tname\r\n13800138000\t张三\r\n".encode("utf-16"),  # Excel's "Unicode text"
    ],
    ids=["utf-8 with BOM", "gbk", "gb18030", "utf-16 tab-separated"],
)
def test_the_accepted_encodings_read_the_same(encoded: bytes) -> None:
    parsed = read_recipients(encoded)

    assert [(r.phone, r.values) for r in parsed.recipients] == [("13800138000", {"name": "张三"})]


def test_bytes_in_no_accepted_encoding_refuse_the_file() -> None:
    (problem,) = problems_of(b"phone\n\xff\xfe\xfa\xfb\x80\x81\x30\n")

    assert problem.field == "file" and "UTF-8" in problem.rule


def test_a_number_listed_again_with_the_same_values_is_dropped_and_counted() -> None:
    parsed = read_recipients(b"phone,code\n13800138000,1\n+8613800138000,1\n13900139000,2\n")

    assert [r.phone for r in parsed.recipients] == ["13800138000", "13900139000"]
    assert parsed.duplicates == 1


def test_a_number_listed_again_with_other_values_is_a_bad_line() -> None:
    (problem,) = problems_of(b"phone,code\n13800138000,1\n13900139000,2\n13800138000,3\n")

    assert problem == FieldProblem("line.4", "13800138000 is already on line 2, with other values")


def test_every_bad_line_is_reported_by_its_number_in_the_file() -> None:
    data = (
        "phone,name\n"  # 1
        "13800138000,张三\n"  # 2
        "1380013800,李四\n"  # 3: ten digits
        "\n"  # 4: blank, still counted
        "23800138000,王五\n"  # 5: not a mobile prefix
        ",赵六\n"  # 6: no number
        "13900139000,钱七,extra\n"  # 7: more cells than the header
        '"13700137000","孙\n八"\n'  # 8-9: a quoted cell over two lines
        "1.38E+10,周九\n"  # 10: what a spreadsheet makes of a number
    ).encode()

    problems = problems_of(data)

    assert [p.field for p in problems] == ["line.3", "line.5", "line.6", "line.7", "line.10"]
    assert [describe(p) for p in problems] == [
        "line 3: '1380013800' is not a mainland China mobile number (11 digits starting 13-19)",
        "line 5: '23800138000' is not a mainland China mobile number (11 digits starting 13-19)",
        "line 6: no number in column 'phone'",
        "line 7: 3 cells, but the header names 2",
        "line 10: '1.38E+10' is not a mainland China mobile number (11 digits starting 13-19)",
    ]


def test_a_file_without_a_header_has_one_column() -> None:
    (problem,) = problems_of(b"13800138000,4821\n13900139000,7730\n")

    assert problem.field == "file" and "no header names them" in problem.rule


def test_a_header_with_a_column_named_twice_or_unnamed_is_refused() -> None:
    problems = problems_of(b"phone,code,,code\n13800138000,1,2,3\n")

    assert [describe(p) for p in problems] == [
        "line 1: column 3 has no name",
        "line 1: column 'code' is named twice",
    ]


@pytest.mark.parametrize("data", [b"", b"\n\n", b"phone,name\n", b"phone\n\n\n"])
def test_a_file_without_a_number_is_refused(data: bytes) -> None:
    (problem,) = problems_of(data)

    assert problem == FieldProblem("file", "has no number in it")


def test_a_problem_of_the_request_is_named_by_the_line_of_its_recipient() -> None:
    parsed = read_recipients(b"phone,name\n13800138000,a\n\n13900139000,b\n")

    assert parsed.in_file_terms(FieldProblem("to[1].values.name", "x")) == FieldProblem(
        "line.4.values.name", "x"
    )
    assert parsed.in_file_terms(FieldProblem("to", "at most 1 numbers")).field == "file"
    assert parsed.in_file_terms(FieldProblem("content", "y")).field == "content"
