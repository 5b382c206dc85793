"""A WebSocket server stampede did not write, for its WebSocket tests: Python's `websockets`.

/echo           echoes every message
/echo?delay_ms=N  echoes after N ms
/close?after_ms=N closes the connection (code 1011) after N ms, echoing until then
/push?every_ms=N  sends {"seq": n} every N ms, skipping seq 5 (a gap the client must count)
Usage: python ws-echo-server.py PORT
"""
import asyncio
import json
import sys
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.server import serve


async def handler(ws):
    url = urlparse(ws.request.path)
    q = {k: v[0] for k, v in parse_qs(url.query).items()}
    if url.path == "/push":
        every = int(q.get("every_ms", "50")) / 1000
        seq = 0
        while True:
            seq += 1
            if seq != 5:
                await ws.send(json.dumps({"seq": seq}))
            await asyncio.sleep(every)
    delay = int(q.get("delay_ms", "0")) / 1000
    if url.path == "/close":
        after = int(q.get("after_ms", "1000")) / 1000

        async def close_later():
            await asyncio.sleep(after)
            await ws.close(1011, "closing on purpose")

        asyncio.get_running_loop().create_task(close_later())
    async for msg in ws:
        if delay:
            await asyncio.sleep(delay)
        await ws.send(msg)


def select_subprotocol(connection, offered):
    """Agrees to `chat` when the client offers it; a client that offers none gets none."""
    return "chat" if "chat" in offered else None


async def main(port):
    async with serve(handler, "127.0.0.1", port, select_subprotocol=select_subprotocol):
        await asyncio.get_running_loop().create_future()


asyncio.run(main(int(sys.argv[1])))
