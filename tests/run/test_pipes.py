"""ffmpeg's messages kept in a temporary file and read back for a one-line error."""

from __future__ import annotations

import tempfile

import pytest

from remaster.run import pipes


def written(text: str):
    file = tempfile.TemporaryFile()
    file.write(text.encode())
    return file


@pytest.mark.unit
def test_the_last_line_of_many_messages_and_none():
    file = written("decode error\n" * 40000 + "the last message\n\n")  # far more than the tail that is read
    assert pipes.stderr_last_line(file) == "the last message" and file.closed
    assert pipes.stderr_last_line(written("")) == "no message"


@pytest.mark.unit
def test_the_tail_is_one_line_of_the_last_characters():
    file = written("first\n" + "x" * 1000 + "\nsecond  line\n")
    tail = pipes.stderr_tail(file, most=20)
    assert tail == "x" * 7 + " second line" and file.closed
