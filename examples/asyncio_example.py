"""One kazoo client shared by coroutines and a native thread, with eventlet_handler.aio.

    python examples/asyncio_example.py 127.0.0.1:2181                        # plain asyncio
    EVENTLET_HUB=asyncio python examples/asyncio_example.py 127.0.0.1:2181   # eventlet's asyncio hub
"""

import asyncio
import os
import sys
import threading

from kazoo.client import KazooClient

from eventlet_handler import EventletHandler, aio


async def main(hosts: str) -> None:
    # mode="auto" (the default) is isolated in an unpatched process: the handler runs
    # kazoo on a hub thread of its own, whatever the loop does.
    client = KazooClient(hosts, handler=EventletHandler())
    await aio.start(client, timeout=15)
    try:
        # Any blocking kazoo call or recipe runs on a green thread of the handler's hub.
        await client.handler.spawn(client.ensure_path, "/example/config")
        await client.set_async("/example/config", b"v1")
        data, stat = await client.get_async("/example/config")  # await needs no import
        print("read", data, "version", stat.version)

        replies = await asyncio.gather(*(aio.future(client.exists_async("/example/config")) for _ in range(100)))
        print("gathered", len(replies), "replies")

        lock = client.Lock("/example/lock", "coroutine")
        if await client.handler.spawn(lock.acquire, timeout=30):
            try:
                print("holding the lock")
            finally:
                await client.handler.spawn(lock.release)

        # A native thread shares the client and blocks as usual.
        writer = threading.Thread(target=client.set, args=("/example/config", b"v2"))
        async for data, stat in aio.data_watch(client, "/example/config"):
            print("config is", data)
            if data == b"v1" and writer.ident is None:
                writer.start()
            if data == b"v2":
                break  # leaving the loop stops the watch
        writer.join(10)  # it has written v2: returns at once
    finally:
        await aio.stop(client)
        client.close()


if __name__ == "__main__":
    hosts = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2181"
    if os.environ.get("EVENTLET_HUB") == "asyncio":
        import eventlet.asyncio

        eventlet.asyncio.spawn_for_awaitable(main(hosts)).wait()
    else:
        asyncio.run(main(hosts))
