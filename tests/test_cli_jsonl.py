"""The batch command's JSONL layer, in-process: input lines to requests or
error lines, ids, duplicate detection, result lines, and the results file a
rerun resumes from (torn last line, --retry-failed rewrite)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import msgspec
import pytest

from ailib_sc import (
    CallStats,
    ChatCompletionResponse,
    Choice,
    Message,
    RateLimitError,
    Role,
    Usage,
)
from ailib_sc._cli._common import CliFailure, ExitCode
from ailib_sc._cli._jsonl import (
    IdSet,
    LineEncoder,
    line_id,
    open_results,
    parse_line,
    scan_input,
)
from ailib_sc._cli._progress import LatencyHistogram


def test_prompt_string_line() -> None:
    parsed = parse_line(b'"Hello there"\n', 3, "gpt-x")
    assert parsed.error is None
    assert parsed.provider is None
    assert parsed.request is not None
    assert parsed.request.model == "gpt-x"
    assert parsed.request.messages == [Message(role=Role.USER, content="Hello there")]


def test_messages_list_line() -> None:
    raw = b'[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]'
    parsed = parse_line(raw, 1, "m")
    assert parsed.request is not None
    assert [(m.role, m.content) for m in parsed.request.messages] == [
        (Role.SYSTEM, "Be brief."),
        (Role.USER, "Hi"),
    ]


def test_request_object_line_keeps_fields_and_overrides() -> None:
    raw = json.dumps(
        {
            "id": "q1",
            "prompt": "Hi",
            "temperature": 0.25,
            "max_tokens": 7,
            "stop": ["\n"],
            "model": "other-model",
        }
    ).encode()
    parsed = parse_line(raw, 1, "default-model")
    req = parsed.request
    assert req is not None
    assert parsed.provider is None
    assert (req.model, req.temperature, req.max_tokens, req.stop) == (
        "other-model",
        0.25,
        7,
        ["\n"],
    )
    assert req.messages == [Message(role=Role.USER, content="Hi")]


def test_a_line_naming_a_provider_takes_its_model_not_the_default() -> None:
    parsed = parse_line(b'{"prompt": "Hi", "provider": "anthropic"}', 1, "gpt-x")
    assert parsed.provider == "anthropic"
    assert parsed.request is not None
    assert parsed.request.model == "auto"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            b"not json",
            "line 4: not valid JSON (JSON is malformed: invalid character (byte 4))",
        ),
        (b'""', "line 4: empty prompt; give the text to send"),
        (b'"   "', "line 4: empty prompt; give the text to send"),
        (b'{"prompt": " "}', "line 4: empty prompt; give the text to send"),
        (b"[]", "line 4: messages must be a non-empty list of message objects"),
        (
            b"42",
            "line 4: expected a prompt string, a messages list or a request object, got a number",
        ),
        (
            b"null",
            "line 4: expected a prompt string, a messages list or a request object, got null",
        ),
        (
            b'{"prompt": "x", "bogus": 1, "also": 2}',
            "line 4: unknown field 'also', 'bogus'; a request takes id, prompt or "
            "messages, model, provider, and ChatCompletionRequest fields (temperature, "
            "max_tokens, ...)",
        ),
        (b'{"id": "a"}', "line 4: give exactly one of prompt and messages"),
        (
            b'{"prompt": "x", "messages": [{"role": "user", "content": "y"}]}',
            "line 4: give exactly one of prompt and messages",
        ),
        (b'{"id": 1.5, "prompt": "x"}', "line 4: id must be a string or an integer"),
        (b'{"id": true, "prompt": "x"}', "line 4: id must be a string or an integer"),
        (
            b'{"prompt": "x", "temperature": "hot"}',
            "line 4: Expected `float | null`, got `str` - at `temperature`",
        ),
        (
            b'[{"role": "robot", "content": "x"}]',
            "line 4: messages: Invalid enum value 'robot' - at `messages[0].role`",
        ),
        (
            b'{"prompt": "x", "provider": 3}',
            "line 4: provider must be a provider name such as 'anthropic'",
        ),
    ],
)
def test_bad_lines_become_errors_that_name_the_line(raw: bytes, message: str) -> None:
    parsed = parse_line(raw, 4, "m")
    assert parsed.request is None
    assert parsed.error is not None
    assert type(parsed.error).__name__ == "InvalidRequestError"
    assert parsed.error.message == message
    assert parsed.error.attempts == 0


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b'"prompt"', 9),
        (b"[]", 9),
        (b'{"id": "abc", "prompt": "x"}', "abc"),
        (b'{"id": 12, "prompt": "x"}', 12),
        (b'{"prompt": "x"}', 9),
        (b'{"id": 1.5}', 9),  # a bad id: the line's number, and an error line
        (b'{"id": "a", ', 9),  # invalid JSON
        (b'  {"id": -3}', -3),
    ],
)
def test_line_id(raw: bytes, key: int | str) -> None:
    assert line_id(raw, 9) == key


def test_id_set_keeps_ints_and_strings_apart() -> None:
    ids = IdSet()
    assert ids.add(5)
    assert ids.add("5")
    assert ids.add(-1)
    assert ids.add(10**12)
    assert not ids.add(5)
    assert not ids.add("5")
    assert not ids.add(10**12)
    assert 5 in ids
    assert "5" in ids
    assert 6 not in ids
    assert "6" not in ids
    assert 10**9 not in ids  # beyond the bitmap's length, not an error
    assert len(ids) == 4


def test_scan_counts_pending_lines_and_skips_blank_ones() -> None:
    source = io.BytesIO(b'"a"\n\n   \n{"id": "x", "prompt": "b"}\n"c"\n')
    done = IdSet()
    done.add("x")
    scan = scan_input(source, done, "in.jsonl")
    assert (scan.lines, scan.pending) == (3, 2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"id": "q", "prompt": "a"}\n{"id": "q", "prompt": "b"}\n',
            'in.jsonl line 2: id "q" repeats an earlier line\'s id',
        ),
        # An explicit id equal to another line's number collides with it.
        ('"a"\n"b"\n{"id": 1, "prompt": "c"}\n', "in.jsonl line 3: id 1 repeats"),
        ('{"id": 3, "prompt": "c"}\n"a"\n"b"\n', "in.jsonl line 3: id 3 repeats"),
    ],
)
def test_duplicate_ids_fail_before_anything_is_sent(text: str, message: str) -> None:
    with pytest.raises(CliFailure) as info:
        scan_input(io.BytesIO(text.encode()), IdSet(), "in.jsonl")
    assert info.value.code is ExitCode.USAGE
    assert info.value.message.startswith(message), info.value.message
    assert info.value.message.endswith("nothing was sent")


def _response(text: str) -> ChatCompletionResponse:
    return ChatCompletionResponse(
        choices=[Choice(message=Message.assistant(text), finish_reason="stop")],
        id="r1",
        model="m",
        usage=Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5),
        stats=CallStats(latency=0.5, attempts=1, http_version="HTTP/2"),
    )


def test_result_lines() -> None:
    enc = LineEncoder(full=False)
    line = enc.ok("a", _response("hi"))
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    value = json.loads(line)
    assert value["id"] == "a"
    assert value["ok"] is True
    assert (value["text"], value["finish_reason"]) == ("hi", "stop")
    assert value["usage"]["total_tokens"] == 5
    assert value["stats"]["latency"] == 0.5
    assert value["stats"]["attempts"] == 1
    assert "response" not in value
    full = json.loads(LineEncoder(full=True).ok(7, _response("hi")))
    assert full["response"]["choices"][0]["message"] == {
        "role": "assistant",
        "content": "hi",
    }
    err = RateLimitError("slow down", status=429, attempts=3)
    assert json.loads(enc.error(7, err)) == {
        "id": 7,
        "ok": False,
        "error": {
            "class": "RateLimitError",
            "message": "slow down",
            "status": 429,
            "retryable": True,
            "attempts": 3,
        },
    }


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _write(path: Path, *lines: dict[str, object], tail: bytes = b"") -> None:
    path.write_bytes(b"".join(msgspec.json.encode(x) + b"\n" for x in lines) + tail)


def test_results_file_is_created_and_locked(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    results = open_results(str(out), retry_failed=False)
    try:
        assert out.exists()
        assert len(results.done) == 0
        with pytest.raises(CliFailure) as info:
            open_results(str(out), retry_failed=False)
        assert info.value.code is ExitCode.USAGE
        assert info.value.message == (
            f"{out} is being written by another ailib-sc batch; wait for it or give "
            "another -o"
        )
    finally:
        results.close()


def test_torn_last_line_is_cut_off(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    ok = {"id": 1, "ok": True, "text": "a"}
    failed = {"id": "b", "ok": False, "error": {"class": "ServerError"}}
    _write(out, ok, failed, tail=b'{"id": 3, "ok": tr')
    results = open_results(str(out), retry_failed=False)
    results.close()
    assert results.repaired == len(b'{"id": 3, "ok": tr')
    assert (results.ok, results.failed, results.dropped) == (1, 1, 0)
    assert 1 in results.done
    assert "b" in results.done
    assert 3 not in results.done
    assert _lines(out) == [ok, failed]


def test_retry_failed_rewrites_the_file_without_error_lines(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    lines = [
        {"id": 1, "ok": True, "text": "a"},
        {"id": 2, "ok": False, "error": {}},
        {"id": 3, "ok": True, "text": "c"},
        {"id": 4, "ok": False, "error": {}},
    ]
    _write(out, *lines, tail=b'{"id": 5')
    inode = os.stat(out).st_ino
    results = open_results(str(out), retry_failed=True)
    try:
        assert (results.ok, results.failed, results.dropped) == (2, 0, 2)
        assert [k in results.done for k in (1, 2, 3, 4, 5)] == [
            True,
            False,
            True,
            False,
            False,
        ]
        assert _lines(out) == [lines[0], lines[2]]
        assert os.stat(out).st_ino != inode  # replaced, not edited in place
        os.write(results.fd, b'{"id": 2, "ok": true}\n')  # appends to the new file
    finally:
        results.close()
    assert [x["id"] for x in _lines(out)] == [1, 3, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_a_foreign_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "notes.txt"
    out.write_text("hello\n")
    with pytest.raises(CliFailure) as info:
        open_results(str(out), retry_failed=False)
    assert info.value.code is ExitCode.USAGE
    assert info.value.message == (
        f"{out} line 1 is not a result line of ailib-sc batch; give another -o, or "
        "remove that line"
    )
    assert out.read_text() == "hello\n"


def test_latency_percentiles_within_one_percent() -> None:
    hist = LatencyHistogram()
    assert hist.percentile(50) is None
    for ms in range(1, 101):
        hist.add(ms / 1000)
    p50, p99 = hist.percentile(50), hist.percentile(99)
    assert p50 is not None
    assert p99 is not None
    assert abs(p50 - 0.050) / 0.050 < 0.01
    assert abs(p99 - 0.099) / 0.099 < 0.01
