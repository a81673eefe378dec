"""Asking a server what it is: four-letter words, their replies, a TLS handshake, the log.

Blocking socket calls with a timeout each (the harness never waits without a bound);
any thread.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"
LOG_TAIL_LINES = 40
PORT_CLASH = re.compile(r"Address already in use|BindException|UNABLE_TO_BIND|Unable to bind")
SERVING_MODES = frozenset({"standalone", "leader", "follower", "observer"})


def four_letter_word(host: str, port: int, word: str, timeout: float = 5.0) -> str:
    """Send a four-letter word (``ruok``, ``srvr``, ``mntr``...) and return the whole reply.

    Raises :class:`OSError` (``ConnectionRefusedError``, ``TimeoutError``...)
    if the server cannot be reached or does not answer within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(word.encode("ascii"))
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{word!r} to {host}:{port}: no complete reply in {timeout:.1f}s")
            sock.settimeout(remaining)
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks).decode("utf-8", "replace")
            chunks.append(chunk)


def parse_mode(srvr_reply: str) -> str:
    """The ``Mode:`` of a ``srvr`` reply, or ``"not serving"``."""
    match = re.search(r"^Mode: (\S+)", srvr_reply, re.MULTILINE)
    return match.group(1) if match else "not serving"


def parse_mntr(mntr_reply: str) -> dict[str, str]:
    """``mntr``'s tab-separated ``key value`` lines as a dict (``zk_server_state``...)."""
    pairs = (line.split("\t", 1) for line in mntr_reply.splitlines() if "\t" in line)
    return {key: value for key, value in pairs}


def is_our_server(port: int, data_dir: str, modes: frozenset[str], timeout: float) -> bool:
    """Answers imok, serves in one of ``modes``, and ``conf`` shows our own ``data_dir``
    (so a foreign server that grabbed our port is never mistaken for ours)."""
    try:
        if four_letter_word(LOOPBACK, port, "ruok", timeout) != "imok":
            return False
        if parse_mode(four_letter_word(LOOPBACK, port, "srvr", timeout)) not in modes:
            return False
        return data_dir in four_letter_word(LOOPBACK, port, "conf", timeout)
    except OSError:
        return False


def tls_handshake_error(port: int, ca_cert: str, timeout: float) -> str | None:
    """Handshake with the TLS port trusting ``ca_cert``; None on success, else why it failed."""
    context = ssl.create_default_context(cafile=ca_cert)
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=LOOPBACK):
                return None
    except (OSError, ssl.SSLError) as exc:
        return f"{type(exc).__name__}: {exc}"


def log_tail(path: Path | None, lines: int = LOG_TAIL_LINES, *, since: int = 0) -> str:
    """The last ``lines`` lines of the log at ``path``, reading from byte offset ``since``."""
    if path is None or not path.exists():
        return "(no server log)"
    with open(path, "rb") as log:
        log.seek(since)
        text = log.read().decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:]) or "(server log is empty)"
