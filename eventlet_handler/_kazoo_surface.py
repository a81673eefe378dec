"""What kazoo calls on a handler besides its lifecycle and callbacks, once for every handler.

``EventletHandler`` and the testing ``DeterministicHandler`` differ in where callbacks
and spawned work run; everything else kazoo touches (the timeout exception, sleep,
queues, primitives, results, ``select``, sockets, the wake pair) must be the same
objects with the same rules, so it lives here, in one mixin both inherit.

Rules:

1. Every factory returns this package's cross-hub primitives: usable from any green
   thread of any hub and from native threads at once (:mod:`._primitives`).
2. ``select`` is :mod:`._select`'s, never ``eventlet.green.select``'s: kazoo's
   connection loop selects on its socket and the wake pair together, and eventlet's
   version can switch a stale answer into it.
3. ``create_connection`` accepts keywords a newer kazoo may add: one this package
   does not know is dropped with one warning per handler and keyword.
4. The class using the mixin overrides ``_dispatch_completion(link, result)``, which
   ``AsyncResult`` calls for its rawlink callbacks, and calls ``__init__``.
5. ``sleep_func`` is a :class:`HubAwareSleep` (green in a thread with a hub, native in
   one without) and compares equal (``==``, which kazoo's dict-retry check uses) to
   ``KazooRetry``'s default sleep: ``time.sleep``, or ``eventlet.sleep`` where kazoo was
   imported into a monkey-patched process. It is never ``eventlet.sleep`` itself: that
   would give every native thread whose kazoo retry backs off a hub of its own, whose
   fds outlive the thread (chaos 2026-12-04b, seed 609).
"""

from __future__ import annotations

import inspect
import logging
import queue as std_queue
from typing import Any, Callable, List, Sequence, Set, Tuple

import eventlet
from eventlet import patcher
from kazoo.retry import KazooRetry

from . import _select, _sockets
from ._hubs import current_hub
from ._errors import HandlerTimeoutError
from ._parking import check_timeout
from ._primitives import Event, Lock, Queue, RLock
from ._wakepair import WakeReader, WakeWriter, create_wake_pair
from .result import AsyncResult

LOG = logging.getLogger("eventlet_handler")

_KAZOO_RETRY_SLEEP: Any = inspect.signature(KazooRetry).parameters["sleep_func"].default
_native_sleep: Callable[[float], None] = patcher.original("time").sleep


class HubAwareSleep:
    """``sleep(seconds)``: green in a thread with an eventlet hub, native in one without
    (no hub is created for it). Any thread except a hub's own loop greenlet.

    Equal to ``KazooRetry``'s default sleep and to ``eventlet.sleep`` (rule 5), so
    kazoo accepts dict ``connection_retry``/``command_retry`` options.
    """

    __slots__ = ()

    def __call__(self, seconds: float) -> None:
        if current_hub() is None:
            _native_sleep(seconds)
        else:
            eventlet.sleep(seconds)

    def __eq__(self, other: object) -> bool:
        return other is self or other is _KAZOO_RETRY_SLEEP or other is eventlet.sleep or isinstance(
            other, HubAwareSleep
        )

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(_KAZOO_RETRY_SLEEP)

    def __repr__(self) -> str:
        return "<eventlet_handler sleep: green in a hub, native elsewhere>"


class KazooSurface:
    """kazoo's handler attributes and factories, shared by this package's handlers."""

    timeout_exception = HandlerTimeoutError
    sleep_func: Callable[[float], None] = HubAwareSleep()  # rule 5
    queue_impl = Queue
    queue_empty = std_queue.Empty

    def __init__(self) -> None:
        self._unknown_options_warned: Set[str] = set()

    def _dispatch_completion(self, link: Callable[[AsyncResult], Any], result: AsyncResult) -> None:
        """Queue ``link(result)`` where this handler runs completions (rule 4). Any thread."""
        raise NotImplementedError

    def async_result(self) -> AsyncResult:
        """A new :class:`~eventlet_handler.AsyncResult` bound to this handler. Any thread."""
        return AsyncResult(self)

    def event_object(self) -> Event:
        """A ``threading.Event`` work-alike for every hub and thread."""
        return Event()

    def lock_object(self) -> Lock:
        """A ``threading.Lock`` work-alike for every hub and thread."""
        return Lock()

    def rlock_object(self) -> RLock:
        """A ``threading.RLock`` work-alike for every hub and thread."""
        return RLock()

    def select(
        self, rlist: Sequence[Any], wlist: Sequence[Any], xlist: Sequence[Any],
        timeout: "float | None" = None,
    ) -> Tuple[List[Any], List[Any], List[Any]]:
        """``select.select`` that waits green (rule 2). Any thread; kazoo calls it from
        its connection loop. A green thread waits green; several may select one fd
        at once, and a poll (``timeout=0``) registers no hub listener; a native
        thread with no hub waits natively and gets none. Returns as soon as one
        object is ready, with every object ready by then.

        :raises OSError: ``EBADF`` for a closed socket.
        """
        check_timeout(timeout, "select() timeout")
        return _select.select(rlist, wlist, xlist, timeout)

    def socket(self, *args: Any, **kwargs: Any) -> Any:
        """A green TCP socket (TCP_NODELAY, close-on-exec). Any thread."""
        return _sockets.create_tcp_socket()

    def create_socket_pair(self) -> Tuple[WakeReader, WakeWriter]:
        """kazoo's wake pair, (read end, write end); see :mod:`._wakepair`. Any thread."""
        return create_wake_pair()

    def create_connection(self, address: Tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        """Connect green, over TLS with ``use_ssl=True`` (handshake never blocks the hub).

        Takes kazoo's keywords (``hostname``, ``timeout``, ``use_ssl``, ``ca``,
        ``certfile``, ``keyfile``, ``keyfile_password``, ``verify_certs``,
        ``check_hostname``, ``options``, ``ciphers``); a keyword this handler does
        not know is ignored with a warning naming it (rule 3). Any green thread.
        """
        warned = self._unknown_options_warned
        for key in sorted(set(kwargs) - _sockets.CONNECTION_KEYWORDS):
            kwargs.pop(key)
            if key not in warned:
                warned.add(key)
                LOG.warning("create_connection(): ignoring option %r this handler does not know", key)
        return _sockets.create_connection(address, *args, **kwargs)
