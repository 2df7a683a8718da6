"""A slow but healthy link for tests: a TCP proxy that delivers every byte ``delay`` seconds late,
each way, in order, and never loses one (an asyncio loop on a thread of its own)."""
from __future__ import annotations

import asyncio
import threading


class SlowLink:
    def __init__(self, target_host: str, target_port: int, delay: float = 1.0) -> None:
        self.target = (target_host, target_port)
        self.delay = delay
        self.host, self.port = "127.0.0.1", 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="slow-link", daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def start(self) -> "SlowLink":
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._accept, self.host, 0), self._loop).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self.target)
        await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w), return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read as it comes; write each chunk ``delay`` after it was read (order kept)."""
        chunks: "asyncio.Queue[tuple[float, bytes]]" = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await chunks.get()
                await asyncio.sleep(max(0.0, due - self._loop.time()))
                if not data:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(deliver())
        try:
            while True:
                data = await reader.read(65536)
                await chunks.put((self._loop.time() + self.delay, data))
                if not data:
                    break
            await sender
        finally:
            sender.cancel()
