"""Server-Sent Events, parsed the way the HTML standard says (§ 9.2.6 "Interpreting an event stream").

Lines end in LF, CR or CRLF; a blank line dispatches the event. `data` lines accumulate, joined by a
newline; `event` and `id` keep their last value; a line starting with `:` is a comment; a field
without a colon has an empty value; one space after the colon is dropped. An event without any
`data` line is not dispatched. The `retry` field is not used by this client and is ignored.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event: its type (`message` when the stream names none), its data, its id."""

    event: str
    data: Any
    """The data parsed as JSON (every jetscribe event is JSON); the raw text when it is not JSON."""
    id: str | None


class EventStreamParser:
    """Feed it the stream's bytes as they arrive; it yields each complete event."""

    def __init__(self) -> None:
        self._pending = ""
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._skip_lf = False
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def feed(self, chunk: bytes | str) -> Iterator[ServerSentEvent]:
        text = self._decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
        if self._skip_lf and text.startswith("\n"):
            text = text[1:]
        self._skip_lf = False
        self._pending += text
        while True:
            cut = min((i for i in (self._pending.find("\r"), self._pending.find("\n")) if i >= 0), default=-1)
            if cut < 0:
                return
            line, ending = self._pending[:cut], self._pending[cut]
            self._pending = self._pending[cut + 1 :]
            if ending == "\r":
                if self._pending.startswith("\n"):
                    self._pending = self._pending[1:]
                elif not self._pending:
                    self._skip_lf = True
            event = self._line(line)
            if event is not None:
                yield event

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event = self._data, self._event or "message"
        self._data, self._event = [], ""
        if not data:
            return None
        text = "\n".join(data)
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        return ServerSentEvent(event, parsed, self._last_id)
