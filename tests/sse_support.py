"""A small Server-Sent Events client for the stream tests: a real socket on loopback,
HTTP/1.1 with a chunked body parsed as it arrives (requests' iter_lines waits for
whole read chunks, which would hide exactly the latency the tests measure).

Messages go on a queue from a reader thread, each stamped with its arrival time.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode


@dataclass(slots=True)
class Message:
    event: str  # "message" when the server named none; "comment" for `: ...` lines
    data: str
    id: str | None
    arrived: float

    def json(self) -> Any:
        return json.loads(self.data)


class SseStream:
    def __init__(
        self,
        port: int,
        path: str,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        *,
        read: bool = True,
        receive_buffer: int | None = None,
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:  # before connect, so the window starts small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.connect(("127.0.0.1", port))
        target = path + ("?" + urlencode(params) if params else "")
        lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.messages: queue.Queue[Message | None] = queue.Queue()
        self.status: int | None = None
        self.closed = threading.Event()
        self._buffer = b""
        if read:
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()

    # -- reading ---------------------------------------------------------------------
    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        return data

    def _until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            self._buffer += self._recv()
        head, _, self._buffer = self._buffer.partition(marker)
        return head

    def _exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._buffer += self._recv()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _read(self) -> None:
        try:
            head = self._until(b"\r\n\r\n").decode()
            self.status = int(head.split(" ", 2)[1])
            chunked = "transfer-encoding: chunked" in head.lower()
            text = ""
            while True:
                if chunked:
                    size = int(self._until(b"\r\n").split(b";")[0], 16)
                    if size == 0:
                        break
                    text += self._exactly(size).decode()
                    self._exactly(2)
                else:
                    text += self._recv().decode()
                while "\n\n" in text:
                    block, text = text.split("\n\n", 1)
                    self._parse(block)
        except (EOFError, OSError, ValueError):
            pass
        finally:
            self.closed.set()
            self.messages.put(None)

    def _parse(self, block: str) -> None:
        event, data, event_id = "message", [], None
        comment = False
        for line in block.split("\n"):
            if line.startswith(":"):
                comment = True
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event_id = value
        if comment and not data:
            self.messages.put(Message("comment", "", None, time.monotonic()))
        elif data:
            self.messages.put(Message(event, "\n".join(data), event_id, time.monotonic()))

    # -- the test's side -------------------------------------------------------------
    def next(self, timeout: float = 10.0, *, skip_comments: bool = True) -> Message:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no SSE message within {timeout} s")
            try:
                message = self.messages.get(timeout=remaining)
            except queue.Empty:
                raise AssertionError(f"no SSE message within {timeout} s") from None
            if message is None:
                raise AssertionError("the stream ended")
            if skip_comments and message.event == "comment":
                continue
            return message

    def until(self, event: str, timeout: float = 10.0) -> list[Message]:
        """Messages up to and including the first `event` one."""
        seen: list[Message] = []
        deadline = time.monotonic() + timeout
        while True:
            message = self.next(max(0.01, deadline - time.monotonic()))
            seen.append(message)
            if message.event == event:
                return seen

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> SseStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
