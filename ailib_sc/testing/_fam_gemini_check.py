"""Request validation for the fake Gemini server, the way the API checks it.

Part of the Gemini family (:mod:`ailib_sc.testing._fam_gemini`), which answers
an `Invalid` with a 400 ``INVALID_ARGUMENT`` worded as the API words it.  Three
passes.  Parsing (proto3 JSON, camelCase or snake_case names): a body that is
not JSON or not an object, an unknown field (``Invalid JSON payload received.
Unknown name ...``, with a ``BadRequest`` detail), a value of the wrong type or
an unknown enum value (``Invalid value at 'generation_config.seed'
(TYPE_INT32), ...``), two data fields in one part.  Then the request's rules,
every violation on its own ``* GenerateContentRequest...`` line: no
``contents``, a content without parts, a part without data, a function call or
response, or a declared function, without a name.  Then the conversation: a
role other than ``user`` or ``model``; a turn with function responses that
does not follow a turn of function calls, or answers a different number of
them; a turn of function calls that does not follow a user turn or a turn of
function responses.

The messages the fixtures do not show are the ones the API sends as quoted in
public bug reports (named on each).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from ailib_sc.testing._replies import decode_json, encode_json

__all__ = ["Invalid", "bad_value", "checked_request", "get_field"]

_V1BETA: Final = "type.googleapis.com/google.ai.generativelanguage.v1beta."


class Invalid(Exception):
    """A request the API refuses (400 ``INVALID_ARGUMENT``).

    ``field`` is the ``BadRequest`` violation's field; ``violation`` says
    whether the body carries a ``BadRequest`` detail at all (the parser's
    errors do, the request's rules do not).
    """

    def __init__(
        self, message: str, *, field: str | None = None, violation: bool = False
    ) -> None:
        super().__init__(message)
        self.field = field
        self.violation = violation


def checked_request(body: bytes) -> dict[str, Any]:
    """Decode ``body`` as a GenerateContentRequest and check it: parsing, the
    request's rules, the conversation (see the module docstring).

    Raises:
        Invalid: the first pass the request fails, worded as the API words it.
    """
    request = _parse(body)
    _check_rules(request)
    _check_conversation(request)
    return request


# -- parsing: proto3 JSON -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Field:
    """One proto field: its snake_case name (paths use it), its kind, and for
    messages and enums their type (``Content``) and values."""

    kind: str  # string int32 float bool bytes struct value object message enum
    type: str = ""
    repeated: bool = False
    values: frozenset[str] = frozenset()  # an enum's names; empty: any name
    snake: str = ""  # "" until `_schema` derives it from the JSON name


def _f(
    kind: str,
    type_: str = "",
    *,
    repeated: bool = False,
    values: str = "",
    snake: str = "",
) -> _Field:
    return _Field(kind, type_, repeated, frozenset(values.split()), snake)


def _schema(**fields: _Field) -> dict[str, _Field]:
    """JSON name -> field, also under the snake_case name (proto3 JSON takes
    both)."""
    out: dict[str, _Field] = {}
    for json_name, field in fields.items():
        snake = field.snake or re.sub(r"([A-Z])", r"_\1", json_name).lower()
        out[json_name] = out[snake] = dataclasses.replace(field, snake=snake)
    return out


# The messages the API parses (generative_service.proto, content.proto); the
# fields of unmodelled messages (Schema, GoogleSearch, SpeechConfig...) are not
# checked.
_SCHEMAS: Final[dict[str, dict[str, _Field]]] = {
    "GenerateContentRequest": _schema(
        model=_f("string"),
        contents=_f("message", "Content", repeated=True),
        systemInstruction=_f("message", "Content"),
        tools=_f("message", "Tool", repeated=True),
        toolConfig=_f("message", "ToolConfig"),
        safetySettings=_f("message", "SafetySetting", repeated=True),
        generationConfig=_f("message", "GenerationConfig"),
        cachedContent=_f("string"),
    ),
    "Content": _schema(
        parts=_f("message", "Part", repeated=True),
        role=_f("string"),
    ),
    "Part": _schema(
        text=_f("string"),
        inlineData=_f("message", "Blob"),
        functionCall=_f("message", "FunctionCall"),
        functionResponse=_f("message", "FunctionResponse"),
        fileData=_f("message", "FileData"),
        executableCode=_f("object", "ExecutableCode"),
        codeExecutionResult=_f("object", "CodeExecutionResult"),
        videoMetadata=_f("object", "VideoMetadata"),
        thought=_f("bool"),
        thoughtSignature=_f("bytes"),
        partMetadata=_f("struct"),
    ),
    "Blob": _schema(mimeType=_f("string"), data=_f("bytes")),
    "FileData": _schema(mimeType=_f("string"), fileUri=_f("string")),
    "FunctionCall": _schema(id=_f("string"), name=_f("string"), args=_f("struct")),
    "FunctionResponse": _schema(
        id=_f("string"),
        name=_f("string"),
        response=_f("struct"),
        parts=_f("message", "FunctionResponsePart", repeated=True),
        willContinue=_f("bool"),
        scheduling=_f(
            "enum",
            "FunctionResponse.Scheduling",
            values="SCHEDULING_UNSPECIFIED SILENT WHEN_IDLE INTERRUPT",
        ),
    ),
    "FunctionResponsePart": _schema(inlineData=_f("message", "FunctionResponseBlob")),
    "FunctionResponseBlob": _schema(mimeType=_f("string"), data=_f("bytes")),
    "Tool": _schema(
        functionDeclarations=_f("message", "FunctionDeclaration", repeated=True),
        googleSearchRetrieval=_f("object", "GoogleSearchRetrieval"),
        codeExecution=_f("object", "CodeExecution"),
        googleSearch=_f("object", "Tool.GoogleSearch"),
        computerUse=_f("object", "Tool.ComputerUse"),
        urlContext=_f("object", "UrlContext"),
        fileSearch=_f("object", "FileSearch"),
        googleMaps=_f("object", "GoogleMaps"),
    ),
    "FunctionDeclaration": _schema(
        name=_f("string"),
        description=_f("string"),
        behavior=_f("enum", "FunctionDeclaration.Behavior"),
        parameters=_f("object", "Schema"),
        parametersJsonSchema=_f("value"),
        response=_f("object", "Schema"),
        responseJsonSchema=_f("value"),
    ),
    "ToolConfig": _schema(
        functionCallingConfig=_f("message", "FunctionCallingConfig"),
        retrievalConfig=_f("object", "RetrievalConfig"),
    ),
    "FunctionCallingConfig": _schema(
        mode=_f(
            "enum",
            "FunctionCallingConfig.Mode",
            values="MODE_UNSPECIFIED AUTO ANY NONE VALIDATED",
        ),
        allowedFunctionNames=_f("string", repeated=True),
    ),
    "SafetySetting": _schema(
        category=_f("enum", "HarmCategory"),
        threshold=_f("enum", "SafetySetting.HarmBlockThreshold"),
    ),
    "GenerationConfig": _schema(
        candidateCount=_f("int32"),
        stopSequences=_f("string", repeated=True),
        maxOutputTokens=_f("int32"),
        temperature=_f("float"),
        topP=_f("float"),
        topK=_f("int32"),
        seed=_f("int32"),
        responseMimeType=_f("string"),
        responseSchema=_f("object", "Schema"),
        # json_name "_responseJsonSchema"; "responseJsonSchema" is the
        # json_name of response_json_schema_ordered (generative_service.proto).
        _responseJsonSchema=_f("value", snake="response_json_schema"),
        responseJsonSchema=_f("value", snake="response_json_schema_ordered"),
        presencePenalty=_f("float"),
        frequencyPenalty=_f("float"),
        responseLogprobs=_f("bool"),
        logprobs=_f("int32"),
        enableEnhancedCivicAnswers=_f("bool"),
        responseModalities=_f(
            "enum",
            "GenerationConfig.Modality",
            repeated=True,
            values="MODALITY_UNSPECIFIED TEXT IMAGE AUDIO",
        ),
        speechConfig=_f("object", "SpeechConfig"),
        thinkingConfig=_f("message", "ThinkingConfig"),
        imageConfig=_f("object", "ImageConfig"),
        mediaResolution=_f(
            "enum",
            "GenerationConfig.MediaResolution",
            values="MEDIA_RESOLUTION_UNSPECIFIED MEDIA_RESOLUTION_LOW "
            "MEDIA_RESOLUTION_MEDIUM MEDIA_RESOLUTION_HIGH",
        ),
    ),
    "ThinkingConfig": _schema(includeThoughts=_f("bool"), thinkingBudget=_f("int32")),
}
#: The JSON names (both spellings) of Part's ``data`` oneof (content.proto).
_DATA: Final = frozenset(
    name
    for name, field in _SCHEMAS["Part"].items()
    if field.snake
    in {
        "text",
        "inline_data",
        "function_call",
        "function_response",
        "file_data",
        "executable_code",
        "code_execution_result",
    }
)
_SCALAR_TYPES: Final = {
    "string": "TYPE_STRING",
    "int32": "TYPE_INT32",
    "float": "TYPE_FLOAT",
    "bool": "TYPE_BOOL",
    "bytes": "TYPE_BYTES",
}
_INT32: Final = range(-(2**31), 2**31)
_BASE64: Final = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


def get_field(obj: dict[str, Any], camel: str) -> Any:
    """``obj[camel]``, or its snake_case spelling (proto3 JSON takes both)."""
    value = obj.get(camel)
    if value is None:
        value = obj.get(re.sub(r"([A-Z])", r"_\1", camel).lower())
    return value


def _parse(body: bytes) -> dict[str, Any]:
    """Decode ``body`` as a GenerateContentRequest; raise `Invalid` as the
    API's JSON parser does."""
    if not body.strip():
        return {}  # an empty body is an empty message
    try:
        request = decode_json(body)
    except msgspec.DecodeError as exc:
        raise Invalid(_syntax_error(body, exc)) from None
    if not isinstance(request, dict):
        # GoogleCloudPlatform's docs and bug reports quote this text.
        raise Invalid(
            'Invalid JSON payload received. Unknown name "": Root element must be '
            "a message.",
            violation=True,
        )
    _check_message(request, "GenerateContentRequest", "")
    return request


def _syntax_error(body: bytes, exc: msgspec.DecodeError) -> str:
    """``Unexpected token.`` with the text around the error and a caret under
    it, as the API quotes a bad body."""
    found = re.search(r"byte (\d+)", str(exc))
    at = int(found.group(1)) if found else len(body)
    start = max(0, at - 20)
    snippet = body[start : at + 20].decode("utf-8", "replace").replace("\n", " ")
    return (
        "Invalid JSON payload received. Unexpected token.\n"
        f"{snippet}\n{' ' * (at - start)}^"
    )


def _unknown(key: str, path: str) -> Invalid:
    # Quoted in zed-industries/zed#44875 and gera2ld/ai.nvim#13 (nested), and
    # sourcegraph/cody#4566 (top level: no "at", no field).
    if not path:
        return Invalid(
            f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.',
            violation=True,
        )
    return Invalid(
        f"Invalid JSON payload received. Unknown name \"{key}\" at '{path}': Cannot "
        "find field.",
        field=path,
        violation=True,
    )


def bad_value(path: str, type_: str, value: Any) -> Invalid:
    # "Invalid value at 'generation_config.seed' (TYPE_INT32), 3812238859" and
    # "... (type.googleapis.com/google.ai.generativelanguage.v1.X), "9:16"", as
    # public reports quote them.
    shown = (
        encode_json(value).decode()
        if not isinstance(value, bool)
        else str(value).lower()
    )
    return Invalid(
        f"Invalid value at '{path}' ({type_}), {shown}", field=path, violation=True
    )


def _check_message(obj: dict[str, Any], name: str, path: str) -> None:
    fields = _SCHEMAS[name]
    data: str | None = None
    for key, value in obj.items():
        field = fields.get(key)
        if field is None:
            raise _unknown(key, path)
        if value is None:
            continue  # null is the default value
        here = f"{path}.{field.snake}" if path else field.snake
        if name == "Part" and key in _DATA:
            if data is not None:
                raise Invalid(
                    "Invalid JSON payload received. Oneof field 'data' is already "
                    f"set. Cannot set '{key}'",
                    field=path,
                    violation=True,
                )
            data = key
        if not field.repeated:
            _check_value(value, field, here)
        elif not isinstance(value, list):
            raise bad_value(here, _type_name(field), value)
        else:
            for i, item in enumerate(value):
                _check_value(item, field, f"{here}[{i}]")


def _type_name(field: _Field) -> str:
    if field.kind in _SCALAR_TYPES:
        return _SCALAR_TYPES[field.kind]
    if field.kind == "struct":
        return "type.googleapis.com/google.protobuf.Struct"
    return _V1BETA + field.type


def _check_value(value: Any, field: _Field, path: str) -> None:
    kind = field.kind
    if kind == "value":
        return
    if kind == "message" and isinstance(value, dict):
        _check_message(value, field.type, path)
        return
    if _fits(value, field):
        return
    raise bad_value(path, _type_name(field), value)


def _fits(value: Any, field: _Field) -> bool:
    """Whether proto3 JSON takes ``value`` for a field of this kind (numbers may
    be JSON strings; enums are names or numbers)."""
    kind = field.kind
    if kind in ("struct", "object", "message"):
        return isinstance(value, dict)
    if kind == "string":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "bytes":
        return isinstance(value, str) and _is_base64(value)
    if kind == "enum":
        if isinstance(value, str):
            return not field.values or value in field.values
        return isinstance(value, int)
    number = value
    if isinstance(value, str):
        try:
            number = float(value) if kind == "float" else int(value)
        except ValueError:
            return False
    if not isinstance(number, int | float):
        return False
    if kind == "float":
        return True
    return float(number).is_integer() and int(number) in _INT32


def _is_base64(text: str) -> bool:
    """Standard or URL-safe base64, padding optional (proto3 JSON bytes)."""
    if _BASE64.fullmatch(text) is None:
        return False
    core = text.rstrip("=").translate(str.maketrans("-_", "+/"))
    try:
        base64.b64decode(core + "=" * (-len(core) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


# -- the request's rules ---------------------------------------------------------------

_EMPTY_NAME: Final = "Name cannot be empty."
_ROLE_MESSAGE: Final = "Please use a valid role: user, model."
# The three turn rules, as langchain-ai/langchain#27799, google-gemini/gemini-cli
# #26486 and #17208 quote them.
_RESPONSE_TURN: Final = (
    "Please ensure that function response turn comes immediately after a function "
    "call turn."
)
_RESPONSE_COUNT: Final = (
    "Please ensure that the number of function response parts is equal to the "
    "number of function call parts of the function call turn."
)
_CALL_TURN: Final = (
    "Please ensure that function call turn comes immediately after a user turn or "
    "after a function response turn."
)


def _check_rules(request: dict[str, Any]) -> None:
    """Raise `Invalid` with every ``* GenerateContentRequest...`` line the
    request breaks (each ends with a newline, as the API's do)."""
    lines: list[str] = []
    contents = get_field(request, "contents")
    if not contents:
        # langchain-ai/langchain-google#1393
        lines.append("contents: contents is not specified")
    for i, content in enumerate(contents or ()):
        parts = get_field(content, "parts")
        if not parts:
            # vercel/ai#3775
            lines.append(f"contents[{i}].parts: contents.parts must not be empty.")
        lines.extend(_part_lines(f"contents[{i}]", parts))
    system = get_field(request, "systemInstruction")
    if system is not None:
        lines.extend(_part_lines("system_instruction", get_field(system, "parts")))
    for i, tool in enumerate(get_field(request, "tools") or ()):
        for j, declaration in enumerate(get_field(tool, "functionDeclarations") or ()):
            if not get_field(declaration, "name"):
                lines.append(
                    f"tools[{i}].function_declarations[{j}].name: {_EMPTY_NAME}"
                )
    if lines:
        raise Invalid("".join(f"* GenerateContentRequest.{line}\n" for line in lines))


def _part_lines(where: str, parts: list[dict[str, Any]] | None) -> list[str]:
    lines = []
    for j, part in enumerate(parts or ()):
        here = f"{where}.parts[{j}]"
        if not any(part.get(key) is not None for key in _DATA):
            # boldsoftware/sketch#68
            lines.append(
                f"{here}.data: required oneof field 'data' must have one "
                "initialized field"
            )
        for camel, snake in (
            ("functionCall", "function_call"),
            ("functionResponse", "function_response"),
        ):
            called = get_field(part, camel)
            if called is not None and not get_field(called, "name"):
                # "function_response.name: Name cannot be empty." in many reports
                lines.append(f"{here}.{snake}.name: {_EMPTY_NAME}")
    return lines


def _check_conversation(request: dict[str, Any]) -> None:
    """Roles, and where turns of function calls and responses may be."""
    contents: list[dict[str, Any]] = get_field(request, "contents")
    counts = []
    for content in contents:
        role = get_field(content, "role")
        if role not in (None, "", "user", "model"):
            raise Invalid(_ROLE_MESSAGE)  # in many reports, e.g. LangBot#1486
        parts = get_field(content, "parts")
        calls = sum(get_field(p, "functionCall") is not None for p in parts)
        answers = sum(get_field(p, "functionResponse") is not None for p in parts)
        counts.append((role or "user", calls, answers))
    for i, (_, calls, answers) in enumerate(counts):
        before = counts[i - 1] if i else None
        if answers:
            if before is None or not before[1]:
                raise Invalid(_RESPONSE_TURN)
            if answers != before[1]:
                raise Invalid(_RESPONSE_COUNT)
        if calls and (before is None or before[0] != "user"):
            raise Invalid(_CALL_TURN)
