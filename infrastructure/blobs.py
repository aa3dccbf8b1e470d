"""A content-addressed blob store for model files, with resumable uploads.

Uploads stream into `<data_dir>/blobs/uploads/<id>.part` in constant memory, the sha256 being
computed on the way; an upload becomes `<data_dir>/blobs/sha256/<hex>` only once complete, its
digest checked and its GGUF header parsed. A file already stored (same digest) is not kept twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from application.catalog import InvalidUpload, StoredBlob, UploadBusy, UploadOffsetMismatch
from domain.errors import NotFound

MAX_UPLOAD_BYTES = 1 << 40  # 1 TiB: larger is not a model file
WRITE_CHUNK = 4 << 20
MAX_METADATA_TEXT = 2000


@dataclass
class Upload:
    id: str
    filename: str
    size: int
    offset: int
    expected_digest: str | None
    created_at: float


class BlobStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "blobs"
        self._blobs = self.root / "sha256"
        self._uploads = self.root / "uploads"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._uploads.mkdir(parents=True, exist_ok=True)
        self._hashers: dict[str, RunningHash] = {}  # upload id -> hash of the bytes so far
        self._lock = threading.Lock()

    # --- uploads ------------------------------------------------------------------------

    def start(self, filename: str, size: int, expected_digest: str | None = None) -> Upload:
        if not 0 < size <= MAX_UPLOAD_BYTES:
            raise InvalidUpload(f"size must be from 1 byte to {MAX_UPLOAD_BYTES} bytes")
        if expected_digest is not None and not _valid_digest(expected_digest):
            raise InvalidUpload("sha256 must be 'sha256:' followed by 64 hex digits")
        free = shutil.disk_usage(self.root).free
        if size > free:
            raise InvalidUpload(f"not enough disk space: {size} bytes needed, {free} free")
        upload = Upload(
            secrets.token_hex(16), Path(filename).name[:200], size, 0, expected_digest, time.time()
        )
        self._part(upload.id).touch()
        self._save(upload)
        with self._lock:
            self._hashers[upload.id] = RunningHash()
        return upload

    def status(self, upload_id: str) -> Upload:
        meta = self._meta(upload_id)
        if not meta.exists():
            raise NotFound(f"no upload {upload_id} (finished, aborted or never started)")
        upload = Upload(**json.loads(meta.read_text()))
        upload.offset = self._part(upload_id).stat().st_size
        return upload

    def writer(self, upload_id: str, offset: int) -> UploadWriter:
        """Append from `offset`, which must be where the upload stands (resume safely).

        The writer holds an exclusive lock on the partial file (across processes) until closed;
        the offset is checked under it, so a resume never races the request it replaces."""
        upload = self.status(upload_id)
        handle = self._part(upload_id).open("ab")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UploadBusy(
                    f"upload {upload_id} is still being written by an earlier request; "
                    "ask for its offset again in a moment and resume from there"
                ) from None
            upload = self.status(upload_id)  # what the earlier writer left, now settled
            if offset != upload.offset:
                raise UploadOffsetMismatch(
                    f"the upload is at byte {upload.offset}, not {offset}; resume from there",
                    upload.offset,
                )
        except BaseException:
            handle.close()
            raise
        with self._lock:
            hasher = self._hashers.get(upload_id)
        if hasher is not None and _hashed_length(hasher) != offset:
            hasher = None  # another process wrote meanwhile: hash the file again at the end
        return UploadWriter(upload, hasher, handle)

    def finish(self, upload_id: str) -> StoredBlob:
        """Check and store a complete upload; invalid data is removed and nothing is kept."""
        upload = self.status(upload_id)
        part = self._part(upload_id)
        if upload.offset != upload.size:
            raise InvalidUpload(
                f"the upload has {upload.offset} of {upload.size} bytes; send the rest first"
            )
        with self._lock:
            hasher = self._hashers.pop(upload_id, None)
        if hasher is None or _hashed_length(hasher) != upload.size:
            hasher = _hash_file(part)
        digest = f"sha256:{hasher.hexdigest()}"
        try:
            if upload.expected_digest and upload.expected_digest != digest:
                raise InvalidUpload(
                    f"digest mismatch: the file received is {digest}, not {upload.expected_digest}"
                )
            metadata = read_gguf_metadata(part)
        except InvalidUpload:
            self.abort(upload_id)
            raise
        target = self.path(digest)
        if target.exists():
            part.unlink()  # the same content is stored already: no second copy
        else:
            os.replace(part, target)
        self._meta(upload_id).unlink(missing_ok=True)
        return StoredBlob(digest, upload.size, metadata)

    def abort(self, upload_id: str) -> None:
        self._part(upload_id).unlink(missing_ok=True)
        self._meta(upload_id).unlink(missing_ok=True)
        with self._lock:
            self._hashers.pop(upload_id, None)

    def expire_uploads(self, idle_seconds: float) -> int:
        """Remove uploads nobody has written to for this long (abandoned)."""
        removed = 0
        now = time.time()
        for part in self._uploads.glob("*.part"):
            if now - part.stat().st_mtime > idle_seconds:
                self.abort(part.stem)
                removed += 1
        return removed

    def add_file(self, source: Path, progress: Callable[[int], None] | None = None) -> StoredBlob:
        """Store a local file (the CLI's upload), with the same checks."""
        upload = self.start(source.name, source.stat().st_size)
        writer = self.writer(upload.id, 0)
        with source.open("rb") as handle:
            while chunk := handle.read(WRITE_CHUNK):
                writer.write(chunk)
                if progress is not None:
                    progress(len(chunk))
        writer.close()
        return self.finish(upload.id)

    # --- blobs --------------------------------------------------------------------------

    def path(self, digest: str) -> Path:
        if not _valid_digest(digest):
            raise NotFound(f"no blob {digest}")
        return self._blobs / digest.removeprefix("sha256:")

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()

    def _part(self, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise NotFound(f"no upload {upload_id}")
        return self._uploads / f"{upload_id}.part"

    def _meta(self, upload_id: str) -> Path:
        return self._part(upload_id).with_suffix(".json")

    def _save(self, upload: Upload) -> None:
        self._meta(upload.id).write_text(json.dumps(asdict(upload)))


class UploadWriter:
    """Appends one request's bytes to an upload, never past its declared size."""

    def __init__(self, upload: Upload, hasher: RunningHash | None, handle: BinaryIO) -> None:
        self._upload = upload
        self._hasher = hasher
        self._handle = handle  # opened for appending and locked by BlobStore.writer
        self.offset = upload.offset

    def write(self, chunk: bytes | bytearray) -> None:
        if self.offset + len(chunk) > self._upload.size:
            raise InvalidUpload(f"more data than the declared size of {self._upload.size} bytes")
        if self._hasher is None:
            self._handle.write(chunk)
        else:
            # Hash and write side by side (both release the GIL): the slower of the two sets
            # the pace, not their sum.
            hashing = threading.Thread(target=self._hasher.update, args=(chunk,))
            hashing.start()
            try:
                self._handle.write(chunk)
            finally:
                hashing.join()
        self.offset += len(chunk)

    def close(self) -> None:
        self._handle.close()


def _valid_digest(digest: str) -> bool:
    hexpart = digest.removeprefix("sha256:")
    return (
        digest.startswith("sha256:")
        and len(hexpart) == 64
        and all(c in "0123456789abcdef" for c in hexpart)
    )


class RunningHash:
    """sha256 that knows how many bytes it has seen (to tell whether it covers a whole file)."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self.length = 0

    def update(self, chunk: bytes) -> None:
        self._sha.update(chunk)
        self.length += len(chunk)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def _hashed_length(hasher: RunningHash) -> int:
    return hasher.length


def _hash_file(path: Path) -> RunningHash:
    hasher = RunningHash()
    with path.open("rb") as handle:
        while chunk := handle.read(WRITE_CHUNK):
            hasher.update(chunk)
    return hasher


def read_gguf_metadata(path: Path) -> dict[str, Any]:
    """The facts an admin needs from a GGUF header; `InvalidUpload` if it is not a sound GGUF."""
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise InvalidUpload("not a GGUF file (it does not start with the GGUF magic bytes)")
    from gguf import GGUFReader, LlamaFileType

    try:
        reader = GGUFReader(str(path))
        fields = {key: field.contents() for key, field in reader.fields.items()}
        parameters = int(sum(int(tensor.n_elements) for tensor in reader.tensors))
    except Exception as error:
        raise InvalidUpload(f"the GGUF file is damaged or truncated: {error}") from None
    architecture = str(fields.get("general.architecture", "unknown"))

    def arch(key: str) -> Any:
        return fields.get(f"{architecture}.{key}")

    file_type = fields.get("general.file_type")
    try:
        quantization = (
            LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_")
            if (file_type is not None)
            else None
        )
    except ValueError:
        quantization = str(file_type)
    template = fields.get("tokenizer.chat_template")
    return {
        "architecture": architecture,
        "name": _text(fields.get("general.name")),
        "parameter_count": parameters,
        "quantization": quantization,
        "context_length": arch("context_length"),
        "embedding_length": arch("embedding_length"),
        "block_count": arch("block_count"),
        "pooling_type": arch("pooling_type"),
        "tokenizer": _text(fields.get("tokenizer.ggml.model")),
        "has_chat_template": template is not None,
        "chat_template": _text(template),
        "tensor_count": len(reader.tensors),
        "gguf_version": fields.get("GGUF.version"),
    }


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:MAX_METADATA_TEXT]
