"""A minimal ZooKeeper client on a blocking stdlib socket: the benchmarks' floor.

It speaks just enough of the protocol (connect, GetData, SetData, Create) with
kazoo's own serialization classes, and parses every reply as kazoo would
(reply header, then the response body), so the difference to a kazoo client is
the client machinery (handler, queues, callbacks), not the wire format.
No pings: sessions live well past a benchmark's few seconds.
"""

from __future__ import annotations

import socket
import threading
from typing import Iterable, List, Tuple

from kazoo.protocol.serialization import (
    Connect,
    Create,
    GetData,
    ReplyHeader,
    SetData,
    int_struct,
)
from kazoo.security import OPEN_ACL_UNSAFE

NODEEXISTS = -110


class RawZooKeeper:
    """One session on one blocking socket. Not thread-safe except `pipeline`."""

    def __init__(self, hosts: str, session_timeout_ms: int = 30000, timeout: float = 10.0) -> None:
        host, _, port = hosts.split(",")[0].rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = self.sock.makefile("rb")
        self.xid = 0
        body = bytes(Connect(0, 0, session_timeout_ms, 0, b"\0" * 16, False).serialize())
        self.sock.sendall(int_struct.pack(len(body)) + body)
        connected, _ = Connect.deserialize(self._read_frame(), 0)
        self.session_id = connected.session_id

    def close(self) -> None:
        try:
            self.rfile.close()
        finally:
            self.sock.close()

    def _frame(self, request: object) -> bytes:
        self.xid += 1
        body = int_struct.pack(self.xid) + int_struct.pack(request.type) + request.serialize()
        return int_struct.pack(len(body)) + body

    def _read_frame(self) -> bytes:
        head = self.rfile.read(4)
        if len(head) < 4:
            raise ConnectionError("ZooKeeper closed the connection")
        (length,) = int_struct.unpack(head)
        body = self.rfile.read(length)
        if len(body) < length:
            raise ConnectionError("ZooKeeper closed the connection mid-reply")
        return body

    def _read_reply(self, request: object, allowed: Tuple[int, ...] = ()) -> object:
        body = self._read_frame()
        header, offset = ReplyHeader.deserialize(body, 0)
        if header.err:
            if header.err in allowed:
                return None
            raise RuntimeError(f"ZooKeeper error {header.err} for {request!r}")
        return request.deserialize(body, offset)

    def get(self, path: str) -> object:
        request = GetData(path, False)
        self.sock.sendall(self._frame(request))
        return self._read_reply(request)

    def set(self, path: str, data: bytes) -> object:
        request = SetData(path, data, -1)
        self.sock.sendall(self._frame(request))
        return self._read_reply(request)

    def pipeline(self, requests: List[object], allowed: Tuple[int, ...] = ()) -> List[object]:
        """Send every request (a writer thread, chunked) while reading the replies in order."""
        def write() -> None:
            for start in range(0, len(requests), 256):
                self.sock.sendall(b"".join(self._frame(r) for r in requests[start:start + 256]))

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        replies = [self._read_reply(r, allowed) for r in requests]
        writer.join(30)
        return replies

    def create_many(self, nodes: Iterable[Tuple[str, bytes]]) -> None:
        """Create nodes (parents first), ignoring ones that exist."""
        requests = [Create(path, data, OPEN_ACL_UNSAFE, 0) for path, data in nodes]
        self.pipeline(requests, allowed=(NODEEXISTS,))
