"""Green TCP and TLS connections for kazoo's connection loop.

The plain path is kazoo's own ``create_tcp_connection`` over eventlet's green
socket module (it already does that right), wrapped in a
:class:`~._readahead.ReadAheadSocket` so kazoo's reads take whole bursts of replies. The TLS path is ours, because
kazoo's builds a *stdlib* ``SSLContext``: wrapping a green socket with it
returns a native ``ssl.SSLSocket`` whose handshake blocks the whole hub. Here
the context is ``eventlet.green.ssl.SSLContext``, whose sockets trampoline, and
the address is resolved with the green resolver.

Every connection attempt first yields once to its hub (``eventlet.sleep(0)``): a
refused connect to a local port completes without ever waiting, and kazoo's dict
retries back off with the stdlib ``time.sleep`` when the process is not patched, so
without that yield kazoo's connection loop would hold its hub through back-off after
back-off for as long as the server is down; with it, for one back-off at most.
"""

from __future__ import annotations

import inspect
import logging
import ssl
from typing import Any, Optional, Tuple

import eventlet
from eventlet.green import socket as green_socket
from eventlet.green import ssl as green_ssl
from kazoo.handlers import utils as kazoo_utils

from ._readahead import ReadAheadSocket

LOG = logging.getLogger(__name__)

Address = Tuple[str, int]


def create_tcp_socket() -> Any:
    """A green TCP socket with TCP_NODELAY and close-on-exec, as kazoo's handlers make."""
    return kazoo_utils.create_tcp_socket(green_socket)


def create_connection(
    address: Address,
    hostname: Any = None,
    timeout: Optional[float] = None,
    use_ssl: bool = False,
    ca: Optional[str] = None,
    certfile: Optional[str] = None,
    keyfile: Optional[str] = None,
    keyfile_password: Optional[str] = None,
    verify_certs: bool = True,
    check_hostname: bool = False,
    options: Optional[int] = None,
    ciphers: Optional[str] = None,
) -> Any:
    """Connect to ``address``, over TLS when ``use_ssl``; everything green. A green thread.

    The TLS server name is ``hostname`` if it is a non-empty ``str``, else the
    address's host: kazoo 2.11's ``command()`` passes the peer's *port* (an ``int``)
    as the hostname (kazoo #770), which is no host name.
    """
    eventlet.sleep(0)  # the module rule: let the hub run between back-offs
    if not use_ssl:  # read ahead on plain connections only (_readahead rule 4)
        return ReadAheadSocket(kazoo_utils.create_tcp_connection(green_socket, address, timeout=timeout))
    context = tls_context(
        ca=ca, certfile=certfile, keyfile=keyfile, keyfile_password=keyfile_password,
        verify_certs=verify_certs, check_hostname=check_hostname,
        options=options, ciphers=ciphers,
    )
    sock = green_socket.create_connection(address, timeout)
    try:
        # wrap_socket() detaches sock's fd into the TLS socket: handshake separately so
        # that a failed handshake can close the socket that owns the fd.
        conn = context.wrap_socket(
            sock, server_hostname=tls_server_name(address, hostname), do_handshake_on_connect=False
        )
    except BaseException:
        sock.close()
        raise
    try:
        conn.do_handshake()
    except BaseException:
        conn.close()
        raise
    conn.settimeout(timeout)
    conn.setsockopt(green_socket.IPPROTO_TCP, green_socket.TCP_NODELAY, 1)
    return conn


def tls_server_name(address: Address, hostname: Any) -> str:
    """The name to verify the server as: ``hostname`` when it is one, else the address's host."""
    if isinstance(hostname, str) and hostname:
        return hostname
    return address[0]


#: The keywords ``create_connection`` takes besides the address (kazoo's, as of 2.11).
CONNECTION_KEYWORDS = frozenset(inspect.signature(create_connection).parameters) - {"address"}


def tls_context(
    *,
    ca: Optional[str],
    certfile: Optional[str],
    keyfile: Optional[str],
    keyfile_password: Optional[str],
    verify_certs: bool,
    check_hostname: bool,
    options: Optional[int],
    ciphers: Optional[str],
) -> Any:
    """A green client ``SSLContext`` configured exactly as kazoo configures its own."""
    if check_hostname and not verify_certs:
        raise ValueError(
            "check_hostname=True needs verify_certs=True: a hostname can only be "
            "checked on a verified certificate"
        )
    if bool(certfile) != bool(keyfile):
        raise ValueError(
            "a client certificate needs both certfile and keyfile "
            f"(got certfile={certfile!r}, keyfile={keyfile!r})"
        )
    context = green_ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if options is not None:
        context.options = options
    else:
        context.options |= ssl.OP_NO_SSLv2 | ssl.OP_NO_SSLv3
    if ciphers:
        context.set_ciphers(ciphers)
    context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    context.check_hostname = check_hostname
    context.verify_mode = ssl.CERT_REQUIRED if verify_certs else ssl.CERT_NONE
    if ca:
        context.load_verify_locations(ca)
    if certfile and keyfile:
        context.load_cert_chain(certfile=certfile, keyfile=keyfile, password=keyfile_password)
    return context
