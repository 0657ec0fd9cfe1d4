"""JSON Lines plumbing shared by the exporters (Django-free): encoding a record whose big JSON
parts are copied verbatim from the database, and a file that counts and hashes what it writes.

Why copy JSON text instead of decoding and re-encoding it: a task's states, chains and scenario are
stored as JSON already, and parsing then re-serializing ~20 KB per task costs more than everything
else an export does (docs/exports.md, "Throughput"). :func:`json_text` and :func:`json_bytes` take
such text (str or UTF-8 bytes) as it is; :class:`RawJSON` marks encoded fragments for
:func:`encode_object`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import queue
import threading
from collections.abc import Iterable
from typing import Any, BinaryIO

__all__ = ["HashingWriter", "RawJSON", "dumps", "encode_object", "json_bytes", "json_text"]


class RawJSON(str):
    """JSON text that is already serialized (a database column's text, or an encoded fragment).

    Only what came out of a JSON encoder belongs here: it is written as it is."""

    __slots__ = ()


def _default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# ASCII output: the lines then hold no character that some readers take as a line break
# (U+2028, U+0085); Django stores JSON columns the same way, so copied text looks alike.
_ENCODER = json.JSONEncoder(ensure_ascii=True, default=_default, allow_nan=False)
_encode_string = json.encoder.encode_basestring_ascii


def dumps(value: Any) -> str:
    """JSON text of ``value``; a :class:`RawJSON` as it is (checked to stay on one line). Scalars
    take a short path: a line has a dozen of them, and the general encoder costs more than the rest."""
    kind = type(value)
    if kind is str:
        return _encode_string(value)
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if kind is dt.datetime:
        return _encode_string(value.isoformat())
    if kind is RawJSON:
        return json_text(str(value))
    return _ENCODER.encode(value)


def json_text(value: Any) -> str:
    """A JSON column's value as JSON text: a ``str`` (or UTF-8 ``bytes``) is already JSON text (what
    the database stores) and is used as it is; anything else (decoded values) is encoded."""
    if isinstance(value, bytes):
        return json_bytes(value).decode("utf-8")
    if isinstance(value, str):
        if "\n" in value or "\r" in value:  # pretty-printed text from elsewhere: re-encode on one line
            return _ENCODER.encode(json.loads(value))
        return value
    return _ENCODER.encode(value)


def json_bytes(value: Any) -> bytes:
    """:func:`json_text` as UTF-8; JSON text may also come as bytes (SQLite hands a column over as
    bytes when asked for a BLOB, saving a decode and an encode of every state)."""
    if isinstance(value, bytes):
        if b"\n" in value or b"\r" in value:
            return _ENCODER.encode(json.loads(value)).encode("utf-8")
        return value
    return json_text(value).encode("utf-8")


def encode_object(items: Iterable[tuple[str, Any]]) -> RawJSON:
    """A JSON object from (key, value) pairs, in that order; values may be :class:`RawJSON`."""
    return RawJSON("{" + ", ".join(f"{_ENCODER.encode(key)}: {dumps(value)}" for key, value in items) + "}")


class HashingWriter:
    """Writes lines to a binary file, counting lines and bytes and hashing them (SHA-256) on the
    way, so the file never has to be read again to describe it.

    Lines are handed over in ~4 MB batches to two helper threads in a row, one hashing, one
    writing: ``hashlib`` and file writes release the GIL, so both run beside the building of the
    next lines, and short queues bound what is held in memory (a few batches). Use it as a context
    manager (or call :meth:`close`): the figures are final, and a helper's error raised, only then."""

    BATCH_BYTES = 4 << 20
    QUEUED_BATCHES = 3

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        # An unbuffered file gets each batch with writev (no copy into a buffer first).
        self._fd = file.fileno() if isinstance(file, io.FileIO) else None
        self._sha = hashlib.sha256()
        self.lines = 0
        self.bytes = 0
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._to_hash: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=self.QUEUED_BATCHES)
        self._to_write: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=self.QUEUED_BATCHES)
        self._error: BaseException | None = None
        self._threads = [threading.Thread(target=self._hash_batches, name="export-hash", daemon=True),
                         threading.Thread(target=self._write_batches, name="export-write", daemon=True)]
        for thread in self._threads:
            thread.start()
        self._closed = False

    def _hash_batches(self) -> None:
        while True:
            batch = self._to_hash.get()
            if batch is not None and self._error is None:
                try:
                    for data in batch:
                        self._sha.update(data)
                except BaseException as exc:  # noqa: BLE001 - handed to the producer thread
                    self._error = exc
            self._to_write.put(batch)  # after an error too: the writer must see the end
            if batch is None:
                return

    def _write_batches(self) -> None:
        while True:
            batch = self._to_write.get()
            if batch is None:
                return
            if self._error is not None:
                continue  # keep taking batches so no one blocks; the producer raises on its next put
            try:
                if self._fd is None:
                    self._file.writelines(batch)
                else:
                    _writev_all(self._fd, batch)
            except BaseException as exc:  # noqa: BLE001 - handed to the producer thread
                self._error = exc

    def write_line(self, text: str) -> None:
        """One line (``text`` holds no newline)."""
        self.write_parts((text.encode("utf-8"),))

    def write_parts(self, parts: tuple[bytes, ...]) -> None:
        """One line given as consecutive pieces of UTF-8 (no newline in them): a piece shared by many
        lines (a domain's tools) is handed over as it is, never copied into each line."""
        self._batch += parts
        self._batch.append(b"\n")
        size = sum(map(len, parts)) + 1
        self._batch_bytes += size
        self.lines += 1
        self.bytes += size
        if self._batch_bytes >= self.BATCH_BYTES:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._error is not None:
            raise self._error
        if self._batch:
            self._to_hash.put(self._batch)
            self._batch, self._batch_bytes = [], 0

    def _stop(self) -> None:
        self._to_hash.put(None)
        for thread in self._threads:
            thread.join()

    def close(self) -> None:
        """Hand over what is left and wait for the helpers (raises their error, if any)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._hand_over()
        finally:
            self._stop()
        if self._error is not None:
            raise self._error
        self._file.flush()

    def __enter__(self) -> HashingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        elif not self._closed:  # already failing: stop the helpers, keep the first error
            self._closed = True
            self._stop()

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


def _writev_all(fd: int, buffers: list[bytes]) -> None:
    """Write every buffer, in order, with as few system calls as the kernel allows."""
    for start in range(0, len(buffers), 512):  # under IOV_MAX (1024 on Linux)
        chunk = buffers[start:start + 512]
        written = os.writev(fd, chunk)
        total = sum(map(len, chunk))
        if written < total:  # a short write (rare on a regular file): finish it plainly
            rest = memoryview(b"".join(chunk))[written:]
            while rest:
                rest = rest[os.write(fd, rest):]
