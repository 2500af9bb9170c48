"""A minimal MQTT 3.1.1 client (QoS 0/1 publish, subscribe, keepalive) on the standard library.

Used by tools/replay.py so the demo needs no extra package. It is not a general client: no QoS 2,
no automatic reconnect, no TLS (the demo broker is on loopback).
"""
from __future__ import annotations

import socket
import struct
import threading
import time


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s: str) -> bytes:
    b = s.encode()
    return struct.pack("!H", len(b)) + b


class MQTTError(Exception):
    pass


class Client:
    def __init__(self, host: str, port: int, client_id: str, clean_session: bool = True, keepalive: int = 30,
                 on_message=None):
        self.on_message = on_message
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.lock = threading.Lock()
        self.inflight: set[int] = set()
        self.acked = threading.Condition()
        self.next_id = 1
        self.keepalive = keepalive
        self.closed = False
        flags = 0x02 if clean_session else 0
        body = _str("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive) + _str(client_id)
        self._send(0x10, body)
        self.sock.settimeout(10)
        hdr = self._read_exact(2)
        rest = self._read_exact(hdr[1])
        if hdr[0] != 0x20 or rest[1] != 0:
            raise MQTTError(f"broker refused the connection (CONNACK code {rest[1] if len(rest) > 1 else '?'})")
        self.sock.settimeout(None)
        self.suback = threading.Event()
        threading.Thread(target=self._reader, daemon=True).start()
        threading.Thread(target=self._pinger, daemon=True).start()

    def _read_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise MQTTError("connection closed by the broker")
            buf += chunk
        return bytes(buf)

    def _send(self, first: int, body: bytes) -> None:
        with self.lock:
            self.sock.sendall(bytes([first]) + _varint(len(body)) + body)

    def _pinger(self) -> None:
        while not self.closed:
            time.sleep(self.keepalive / 2)
            try:
                self._send(0xC0, b"")
            except OSError:
                return

    def _reader(self) -> None:
        try:
            while not self.closed:
                first = self._read_exact(1)[0]
                mult, length = 1, 0
                while True:
                    b = self._read_exact(1)[0]
                    length += (b & 0x7F) * mult
                    mult *= 128
                    if not b & 0x80:
                        break
                body = self._read_exact(length) if length else b""
                kind = first >> 4
                if kind == 3:  # PUBLISH
                    qos = (first >> 1) & 3
                    tlen = struct.unpack("!H", body[:2])[0]
                    topic = body[2:2 + tlen].decode()
                    pos = 2 + tlen
                    if qos:
                        pid = body[pos:pos + 2]
                        pos += 2
                        self._send(0x40, pid)
                    if self.on_message:
                        self.on_message(topic, body[pos:], bool(first & 1))
                elif kind == 4:  # PUBACK
                    pid = struct.unpack("!H", body[:2])[0]
                    with self.acked:
                        self.inflight.discard(pid)
                        self.acked.notify_all()
                elif kind == 9:  # SUBACK
                    self.suback.set()
        except (MQTTError, OSError):
            pass

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self._send(0x82, struct.pack("!H", self._pid()) + _str(topic) + bytes([qos]))
        if not self.suback.wait(10):
            raise MQTTError(f"no SUBACK for {topic}")
        self.suback.clear()

    def _pid(self) -> int:
        with self.acked:
            while True:
                pid = self.next_id
                self.next_id = self.next_id % 65535 + 1
                if pid not in self.inflight:
                    return pid

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, max_inflight: int = 200) -> None:
        first = 0x30 | (qos << 1) | (1 if retain else 0)
        if qos == 0:
            self._send(first, _str(topic) + payload)
            return
        with self.acked:
            while len(self.inflight) >= max_inflight:
                if not self.acked.wait(10):
                    raise MQTTError("broker stopped acknowledging QoS 1 publishes")
        pid = self._pid()
        with self.acked:
            self.inflight.add(pid)
        self._send(first, _str(topic) + struct.pack("!H", pid) + payload)

    def wait_acked(self, timeout: float = 10) -> bool:
        end = time.time() + timeout
        with self.acked:
            while self.inflight:
                left = end - time.time()
                if left <= 0:
                    return False
                self.acked.wait(left)
        return True

    def close(self) -> None:
        self.wait_acked(5)
        self.closed = True
        try:
            self._send(0xE0, b"")
            self.sock.close()
        except OSError:
            pass
