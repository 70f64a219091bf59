"""A small closed-loop HTTP/1.1 load generator on asyncio streams (no dependency).

    result = asyncio.run(run_load("127.0.0.1", 8000, requests_for, concurrency=16, duration=30))

``concurrency`` clients each hold one keep-alive connection and send their next request as
soon as the previous answer has been read completely (a closed loop: the offered load is what
the server can take at that concurrency). A phase ends after ``duration`` seconds or after
``requests`` requests, whichever comes first; a ``warmup`` of N seconds runs before it with
the same clients and is not counted. Every request's latency is the time from writing it to
reading the last byte of its body.

Why not locust or httpx: on a 2-core machine the load generator competes with gunicorn and
PostgreSQL for the same cores, so it should cost as little CPU per request as possible; raw
asyncio streams cost less than either, and add nothing to install. Only 127.0.0.1 (loopback)
is ever a target here: ``run_load`` refuses any other host.

The request callable gets the client number and that client's running request count and
returns the raw request bytes (``build_request`` makes them), so each client walks its own
slice of the subjects.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


def build_request(
    method: str, path: str, *, host: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list (p in 0..100)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class LoadResult:
    requests: int = 0  # completed with a response (any status)
    errors: int = 0  # non-2xx responses plus transport errors
    transport_errors: int = 0
    statuses: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds
    elapsed: float = 0.0
    bytes_read: int = 0
    sample_body: bytes = b""
    error_sample: str = ""

    def summary(self) -> dict:
        lat = sorted(self.latencies)
        ms = lambda v: None if v is None else round(v * 1000, 2)  # noqa: E731
        return {
            "requests": self.requests,
            "seconds": round(self.elapsed, 3),
            "requests_per_s": round(self.requests / self.elapsed, 1) if self.elapsed else None,
            "time_per_request_ms": round(1000 * self.elapsed / self.requests, 3)
            if self.requests
            else None,
            "p50_ms": ms(percentile(lat, 50)),
            "p95_ms": ms(percentile(lat, 95)),
            "p99_ms": ms(percentile(lat, 99)),
            "max_ms": ms(lat[-1] if lat else None),
            "mean_ms": ms(sum(lat) / len(lat) if lat else None),
            "errors": self.errors,
            "transport_errors": self.transport_errors,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "bytes_read": self.bytes_read,
            "error_sample": self.error_sample[:300],
        }


class _Connection:
    def __init__(self, host: str, port: int, timeout: float):
        self.host, self.port, self.timeout = host, port, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self.timeout
        )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def exchange(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        self.writer.write(raw)
        return await asyncio.wait_for(self._response(), self.timeout)

    async def _response(self) -> tuple[int, bytes]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _sep, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            body = b"".join(parts)
        else:  # no length: the body runs to the end of the connection
            body = await self.reader.read()
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body


def _check_loopback(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(f"the load generator only targets loopback addresses, not {host!r}")


async def run_load(
    host: str,
    port: int,
    request_for: Callable[[int, int], bytes],
    *,
    concurrency: int,
    duration: float | None = None,
    requests: int | None = None,
    warmup: float = 0.0,
    timeout: float = 30.0,
) -> LoadResult:
    """Drive the server; returns the measured phase (the warm-up is discarded)."""
    _check_loopback(host)
    if duration is None and requests is None:
        raise ValueError("give a duration or a request count")
    hard_limit = (duration or 3600.0) + warmup + timeout + 5  # never runs away
    result = LoadResult()
    state = {"measuring": warmup <= 0, "stop": False, "issued": 0}
    loop = asyncio.get_running_loop()
    started = loop.time()
    measure_from = started + warmup

    async def client(number: int) -> None:
        conn = _Connection(host, port, timeout)
        sent = 0
        try:
            while not state["stop"]:
                now = loop.time()
                if now - started > hard_limit:
                    break
                measuring = now >= measure_from
                if measuring:
                    if requests is not None and state["issued"] >= requests:
                        break
                    state["issued"] += 1
                raw = request_for(number, sent)
                sent += 1
                t0 = time.perf_counter()
                try:
                    status, body = await conn.exchange(raw)
                except (
                    TimeoutError,
                    OSError,
                    asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError,
                    ValueError,
                    IndexError,
                ) as exc:
                    conn.close()
                    if measuring:
                        result.transport_errors += 1
                        result.errors += 1
                        result.error_sample = result.error_sample or repr(exc)
                    continue
                latency = time.perf_counter() - t0
                if not measuring:
                    continue
                result.requests += 1
                result.latencies.append(latency)
                result.statuses[status] += 1
                result.bytes_read += len(body)
                if not 200 <= status < 300:
                    result.errors += 1
                    if not result.error_sample:
                        result.error_sample = f"{status}: {body[:300]!r}"
                elif not result.sample_body:
                    result.sample_body = body[:2000]
        finally:
            conn.close()

    async def timer() -> None:
        if duration is not None:
            await asyncio.sleep(warmup + duration)
            state["stop"] = True

    tasks = [asyncio.create_task(client(i)) for i in range(concurrency)]
    stopper = asyncio.create_task(timer())
    if warmup > 0:
        await asyncio.sleep(warmup)
        state["measuring"] = True
    t_measure = loop.time()
    await asyncio.gather(*tasks)
    result.elapsed = loop.time() - max(t_measure, measure_from)
    stopper.cancel()
    return result
