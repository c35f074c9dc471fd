"""`POST /v1/sms/file`: an SMS job whose recipients are a file, sent as the body (`text/csv`,
options as query parameters) or uploaded (`multipart/form-data`: a `file` part, options as
form fields or query parameters).

The file is read by `worker.recipients_file`, as `herald send sms --to-file` reads it. FastAPI
documents one body shape per operation only from its parameters, so this route reads the body
itself and describes both shapes in `OPENAPI` (built from `SmsFileOptions`, the options' model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import UploadFile

from worker.api.responses import error, field_location
from worker.errors import FieldProblem
from worker.messages import SmsFileOptions

CSV_TYPES = ("text/csv", "text/plain")
MULTIPART = "multipart/form-data"
OPTION_NAMES = frozenset(SmsFileOptions.model_fields)
EXAMPLE_CONTENT = "【Herald】尊敬的{name}，您的验证码是{code}"
EXAMPLE_CSV = "phone,name,code\n13800138000,张三,4821\n+86 139 0013 9000,李四,7730\n"


@dataclass(frozen=True)
class Upload:
    """A file of recipients with the job's options, and where the options came from."""

    data: bytes
    options: dict[str, str]
    options_in: str
    """`query` (a `text/csv` body) or `body` (a multipart form)."""

    def is_option(self, field: str) -> bool:
        name = field.split(".")[0]
        return name in OPTION_NAMES or name in self.options

    def located(self, problems: list[FieldProblem]) -> list[dict[str, Any]]:
        """The problems as FastAPI's 422 lists them: an option where it was given, a line
        of the file (`body, line, 17`) or the file as a whole (`body, file`) in the body."""
        return [
            {
                "loc": [
                    self.options_in if self.is_option(p.field) else "body",
                    *field_location(p.field),
                ],
                "msg": p.rule,
                "type": "value_error",
            }
            for p in problems
        ]


async def read_upload(request: Request) -> Upload:
    """The file and options of a request; 415 for another content type, 422 without a file."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    options = {k: v for k, v in request.query_params.items() if v != ""}
    if media_type in CSV_TYPES:
        return Upload(await request.body(), options, "query")
    if media_type != MULTIPART:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"send the file as text/csv or as the `file` part of {MULTIPART}",
        )
    async with request.form() as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            missing = {"loc": ("body", "file"), "msg": "Field required", "type": "missing"}
            raise RequestValidationError([missing])
        fields = {k: v for k, v in form.items() if k != "file" and isinstance(v, str) and v != ""}
        return Upload(await upload.read(), options | fields, "body")


def inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its `$defs` references replaced by the definitions."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def openapi() -> dict[str, Any]:
    """The operation's parameters and both request bodies, for `openapi_extra`."""
    options = inlined(SmsFileOptions.model_json_schema())
    properties: dict[str, Any] = options["properties"]
    parameters = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": f"{spec.get('description', '')} (With multipart: here or a form field.)",
            "schema": {k: v for k, v in spec.items() if k not in ("description", "title")},
        }
        for name, spec in properties.items()
    ]
    file_part = {
        "type": "string",
        "format": "binary",
        "description": "A CSV whose header names a phone column and the placeholders' columns, "
        "or one number a line; UTF-8, UTF-16 with a BOM, or GB18030/GBK.",
    }
    return {
        "parameters": parameters,
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {"type": "string", "description": file_part["description"]},
                    "examples": {
                        "personalised": {
                            "summary": "Numbers with the values of {name} and {code}",
                            "value": EXAMPLE_CSV,
                            "description": f"With `?content={EXAMPLE_CONTENT}`",
                        },
                        "numbers": {
                            "summary": "One number a line",
                            "value": "13800138000\n13900139000\n",
                        },
                    },
                },
                MULTIPART: {
                    "schema": {
                        "type": "object",
                        "required": ["file", "content"],
                        "properties": {"file": file_part, **properties},
                    },
                },
            },
        },
    }


UNSUPPORTED_MEDIA_TYPE: dict[int | str, dict[str, Any]] = {
    415: error(
        "The body is neither text/csv nor multipart/form-data; nothing was done.",
        f"send the file as text/csv or as the `file` part of {MULTIPART}",
    )
}
