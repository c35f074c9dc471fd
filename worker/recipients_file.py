"""Recipients read from a file: a CSV with a header row, or one number a line.

`herald send sms --to-file` and `POST /v1/sms/file` both read their file here, so that a file
means the same thing wherever it is sent. What is accepted:

- **Encodings**: UTF-8 (with or without a byte-order mark), UTF-16 with its byte-order mark
  (Excel's "Unicode text"), and otherwise GB18030, which includes GBK and GB2312 (what Excel
  on a Chinese Windows writes as "CSV"). Anything else is refused as a whole.
- **Shape**: comma-separated, or tab-separated when the first line has a tab and no comma;
  quoted cells as CSV quotes them. Blank lines are skipped.
- **Header**: the first line is a header when none of its cells looks like a number. The
  number is then in the column named phone, mobile, number, 手机号, 手机号码, 手机 or 电话 (in
  any case), else in the first column; every other column gives each recipient a value of the
  same name, for the content's `{placeholders}` (an empty cell gives none). Without a header
  there is one column: the number.
- **Numbers** are normalised by the API's own rule (`worker.messages.normalise_mobile`). A
  number listed again with the same values is dropped (counted as a duplicate); listed again
  with other values, that line is refused, since either message could be the wrong one.

Every line that breaks a rule is reported with its number (the header is line 1, blank lines
count), all of them at once, and then nothing is stored.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from typing import Any

from worker.errors import FieldProblem, InvalidInput
from worker.messages import normalise_mobile, storable

PHONE_COLUMNS = ("phone", "mobile", "number", "手机号", "手机号码", "手机", "电话")
NUMBER_LIKE = re.compile(r"^[+\d\s()-]*\d[+\d\s()-]*$")
RECIPIENT_FIELD = re.compile(r"^to\[(\d+)\](.*)$")
LINE_FIELD = re.compile(r"^line\.(\d+)(?:\.(.*))?$")


@dataclass(frozen=True)
class FileRecipient:
    line: int
    phone: str
    values: dict[str, str]


@dataclass(frozen=True)
class RecipientsFile:
    """A file's recipients in file order (duplicates dropped), and its value columns."""

    recipients: list[FileRecipient]
    columns: list[str]
    duplicates: int
    """Lines dropped because an earlier line has the same number and values."""

    def to(self) -> list[dict[str, Any]]:
        """The recipients as an SMS request's `to`."""
        return [{"phone": r.phone, "values": r.values} for r in self.recipients]

    def in_file_terms(self, problem: FieldProblem) -> FieldProblem:
        """A problem of the request built from this file, named by the file's line:
        `to[3].values.name` becomes `line.17.values.name`, and `to` becomes `file`."""
        if problem.field == "to":
            return FieldProblem("file", problem.rule)
        found = RECIPIENT_FIELD.match(problem.field)
        if found is None:
            return problem
        line = self.recipients[int(found.group(1))].line
        return FieldProblem(f"line.{line}{found.group(2)}", problem.rule)


def read_recipients(data: bytes) -> RecipientsFile:
    """The recipients of a file; `InvalidInput` naming every bad line (`line.17`) or what is
    wrong with the file as a whole (`file`)."""
    rows = list(numbered_rows(decode(data)))
    if not rows:
        raise InvalidInput([FieldProblem("file", "has no number in it")])
    first_line, first = rows[0]
    header = first if is_header(first) else None
    columns: list[str] = []
    phone_at = 0
    problems: list[FieldProblem] = []
    if header is not None:
        rows = rows[1:]
        phone_at = phone_column(header)
        columns = [name for at, name in enumerate(header) if at != phone_at]
        problems += header_problems(header, first_line)
    elif len(first) > 1:
        problems.append(
            FieldProblem(
                "file",
                f"line {first_line} has {len(first)} cells but no header names them: "
                "add a first line such as phone,name",
            )
        )
    if problems:
        raise InvalidInput(problems)
    recipients: list[FileRecipient] = []
    seen: dict[str, FileRecipient] = {}
    duplicates = 0
    for line, cells in rows:
        try:
            recipient = recipient_of(line, cells, header, phone_at)
        except ValueError as exc:
            problems.append(FieldProblem(f"line.{line}", str(exc).removeprefix("Value error, ")))
            continue
        earlier = seen.get(recipient.phone)
        if earlier is None:
            seen[recipient.phone] = recipient
            recipients.append(recipient)
        elif earlier.values == recipient.values:
            duplicates += 1
        else:
            problems.append(
                FieldProblem(
                    f"line.{line}",
                    f"{recipient.phone} is already on line {earlier.line}, with other values",
                )
            )
    if problems:
        raise InvalidInput(problems)
    if not recipients:
        raise InvalidInput([FieldProblem("file", "has no number in it")])
    return RecipientsFile(recipients, columns, duplicates)


def decode(data: bytes) -> str:
    """UTF-8 (a BOM dropped), UTF-16 with its BOM, else GB18030 (GBK's superset)."""
    try:
        if data.startswith(codecs.BOM_UTF8):
            return data[len(codecs.BOM_UTF8) :].decode("utf-8")
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return data.decode("utf-16")
    except UnicodeDecodeError as exc:
        raise InvalidInput([FieldProblem("file", f"is not valid text: {exc.reason}")]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise InvalidInput(
            [FieldProblem("file", "is neither UTF-8, UTF-16 with a BOM, nor GB18030/GBK text")]
        ) from None


def numbered_rows(text: str) -> list[tuple[int, list[str]]]:
    """Each non-blank row with the number of the line it starts on (1-based), cells stripped
    and trailing empty cells dropped."""
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    line = 1
    for cells in reader:
        stripped = [cell.strip() for cell in cells]
        while stripped and not stripped[-1]:
            stripped.pop()
        if stripped:
            rows.append((line, stripped))
        line = reader.line_num + 1
    return rows


def is_header(cells: list[str]) -> bool:
    return not any(NUMBER_LIKE.match(cell) for cell in cells)


def phone_column(header: list[str]) -> int:
    names = [name.lower() for name in header]
    for wanted in PHONE_COLUMNS:
        if wanted in names:
            return names.index(wanted)
    return 0


def header_problems(header: list[str], line: int) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    for at, name in enumerate(header):
        if not name:
            problems.append(FieldProblem(f"line.{line}", f"column {at + 1} has no name"))
        elif header.index(name) != at:
            problems.append(FieldProblem(f"line.{line}", f"column {name!r} is named twice"))
    return problems


def recipient_of(
    line: int, cells: list[str], header: list[str] | None, phone_at: int
) -> FileRecipient:
    """One row as a recipient; `ValueError` saying which rule it breaks."""
    width = 1 if header is None else len(header)
    if len(cells) > width:
        named = "no header names more than one" if header is None else f"the header names {width}"
        raise ValueError(f"{len(cells)} cells, but {named}")
    for cell in cells:
        storable(cell)
    number = cells[phone_at] if phone_at < len(cells) else ""
    if not number:
        column = "the first column" if header is None else f"column {header[phone_at]!r}"
        raise ValueError(f"no number in {column}")
    values = {
        name: cells[at]
        for at, name in enumerate(header or [])
        if at != phone_at and at < len(cells) and cells[at]
    }
    return FileRecipient(line, normalise_mobile(number), values)


def describe(problem: FieldProblem) -> str:
    """A problem as a person reads it: `line 17: <rule>`, or `<field>: <rule>`."""
    found = LINE_FIELD.match(problem.field)
    if found is None:
        return f"{problem.field}: {problem.rule}"
    return f"line {found.group(1)}: {problem.rule}"
