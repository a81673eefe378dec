"""Prototype (measured, not adopted): kazoo's connection loop waits natively when its hub is idle.

Import it in a benchmark child (``CPU_PROTOTYPES=prototypes.native_select
benchmarks/cpu.py ...``). In the handler's hub thread, when nothing but the bridge
can give the hub work (``_parking.hub_is_idle``), ``select`` polls the caller's fds
and the bridge's fd natively, with the caller's timeout: no listener registered and
removed (two ``epoll_ctl`` each, each releasing the GIL), no hub loop round. A bridge
call (its fd turns readable) sends the select down the green path, where the pump
runs first. What it measures is the recommendation for ``_select.py``.
"""

from __future__ import annotations

from typing import Any

from eventlet import hubs, patcher

from eventlet_handler import _select
from eventlet_handler._bridge import open_bridge_of
from eventlet_handler._parking import hub_is_idle

_select_mod: Any = patcher.original("select")
_green_select = _select.select
_READ = _select_mod.POLLIN | _select_mod.POLLPRI


def select(rlist: Any, wlist: Any, xlist: Any, timeout: Any = None) -> Any:
    hub = hubs.get_hub()
    bridge = open_bridge_of(hub)
    if bridge is None or not hub_is_idle(hub, bridge):
        return _green_select(rlist, wlist, xlist, timeout)
    readers = {_select._fd(obj): obj for obj in rlist}
    writers = {_select._fd(obj): obj for obj in wlist}
    poller = _select_mod.poll()
    for fd in readers:
        poller.register(fd, _READ | (_select_mod.POLLOUT if fd in writers else 0))
    for fd in writers:
        if fd not in readers:
            poller.register(fd, _select_mod.POLLOUT)
    poller.register(bridge.read_fd, _READ)
    events = poller.poll(None if timeout is None else timeout * 1000.0)
    readable = [readers[fd] for fd, ev in events if fd in readers and ev & _select._READABLE]
    writable = [writers[fd] for fd, ev in events if fd in writers and ev & _select._WRITABLE]
    if readable or writable:
        return readable, writable, []
    if events:  # only the bridge: let its pump run, then wait green
        return _green_select(rlist, wlist, xlist, timeout)
    return [], [], []


_select.select = select
