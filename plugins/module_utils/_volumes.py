# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

Docker named volumes (uploads, certificates) as tar archives, through the docker API: a helper container
that is created but never started mounts the volume read-only, and the engine streams the tar of the
mount (``GET /containers/ID/archive``). No image needs a shell or tar; the helper uses an image already on
the host (one of the volume's own containers), so nothing is pulled. ``VolumeWriter`` is the volume kind
of the backup pipeline (``_backup``).
"""

from __future__ import annotations

import contextlib
import time

from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils._backup import BackupError, BackupWriter, write_stream
from ansible_collections.stackops.runbook.plugins.module_utils._compression import CompressionError, Decompressor
from ansible_collections.stackops.runbook.plugins.module_utils._docker import ContainerError, docker_sdk

MOUNT = "/volume"
HELPER_LABEL = "io.stackops.runbook.volume-helper"
BLOCK = 512
ZERO_BLOCK = b"\0" * BLOCK


def image_of_a_user(client, volume_name):
    """The image of a container (running or not) that uses the volume, or None: it is on the host already."""
    users = client.containers.list(all=True, filters={"volume": volume_name})
    return users[0].attrs["Image"] if users else None


def image_for(client, volume_name, image=None):
    """The image of the helper: the one given, else that of a container using the volume."""
    found = image or image_of_a_user(client, volume_name)
    if not found:
        raise ContainerError("no container uses the volume %s, so there is no image on the host to mount it with; "
                             "set helper_image to any image present on the host" % volume_name)
    return found


def get_volume(client, volume_name):
    try:
        return client.volumes.get(volume_name)
    except docker_sdk().errors.NotFound:
        raise ContainerError("there is no docker volume %s on this host (docker volume ls lists them)" % volume_name)


def volume_exists(client, volume_name):
    try:
        client.volumes.get(volume_name)
    except docker_sdk().errors.NotFound:
        return False
    return True


@contextlib.contextmanager
def helper(client, volume_name, image, read_only=True, command=None):
    """A container with the volume at /volume; created (and started only with a ``command``), always removed."""
    sdk = docker_sdk()
    try:
        container = client.containers.create(
            image, command=command or ["true"], entrypoint=[] if command else None, network_disabled=True,
            volumes={volume_name: {"bind": MOUNT, "mode": "ro" if read_only else "rw"}},
            labels={HELPER_LABEL: str(int(time.time()))}, user="0")
    except sdk.errors.ImageNotFound:
        raise ContainerError("the helper image %s is not on the host; set helper_image to one that is" % image)
    except sdk.errors.APIError as exc:
        raise ContainerError("cannot create a helper container for the volume %s: %s" % (volume_name, exc))
    try:
        yield container
    finally:
        with contextlib.suppress(sdk.errors.APIError):
            container.remove(force=True)


def archive_chunks(container):
    """The tar stream of /volume (entries named ``volume/...``)."""
    try:
        chunks, _stat = container.get_archive(MOUNT, chunk_size=1024 * 1024)
    except docker_sdk().errors.APIError as exc:
        raise ContainerError("cannot read the volume through the docker engine: %s" % exc)
    return chunks


def empty_volume(container):
    """Run the started helper's command (which empties /volume) and check it worked."""
    container.start()
    status = container.wait(timeout=300)
    if status.get("StatusCode") != 0:
        logs = container.logs(tail=20).decode("utf-8", "replace")
        raise ContainerError("emptying the volume failed (exit %s): %s" % (status.get("StatusCode"), logs.strip()))


def put_archive(container, data):
    try:
        if not container.put_archive("/", data):
            raise ContainerError("the docker engine refused the archive")
    except docker_sdk().errors.APIError as exc:
        raise ContainerError("cannot write the volume through the docker engine: %s" % exc)


class TarReader:
    """Follows a tar stream fed in pieces: counts its members and their bytes, and says whether it ended
    with the end-of-archive marker (two zero blocks), which a truncated archive lacks."""

    def __init__(self):
        self.buffer = b""
        self.skip = 0
        self.members = 0
        self.bytes = 0
        self.zero_blocks = 0
        self.ended = False

    def feed(self, data):
        buffer = self.buffer + data
        pos = 0
        while not self.ended:
            if self.skip:
                taken = min(self.skip, len(buffer) - pos)
                pos += taken
                self.skip -= taken
                if self.skip:
                    break
            if len(buffer) - pos < BLOCK:
                break
            header = buffer[pos:pos + BLOCK]
            pos += BLOCK
            if header == ZERO_BLOCK:
                self.zero_blocks += 1
                self.ended = self.zero_blocks >= 2
                continue
            self.zero_blocks = 0
            size = self._size(header[124:136])
            kind = header[156:157]
            if kind not in (b"x", b"g", b"L", b"K"):  # pax and GNU long-name headers describe the next member
                self.members += 1
                if kind in (b"0", b"\0", b"7"):
                    self.bytes += size
            self.skip = (size + BLOCK - 1) // BLOCK * BLOCK
        # keep only the unread part: what follows the end marker (padding) is dropped
        self.buffer = b"" if self.ended else buffer[pos:]

    @staticmethod
    def _size(field):
        if field[:1] == b"\x80":  # base-256 for large files
            return int.from_bytes(field[1:], "big")
        text = field.rstrip(b"\0 ").strip()
        try:
            return int(text or b"0", 8)
        except ValueError:
            raise ValueError("not a tar stream (bad size field %r)" % field)


class TarCheck:
    """Decompresses what is written and follows the tar to its end marker, so a backup that would not
    extract is never committed."""

    def __init__(self, compression):
        self.decompressor = Decompressor(compression)
        self.tar = TarReader()

    def observe(self, compressed):
        try:
            self.tar.feed(self.decompressor.feed(compressed))
        except (CompressionError, ValueError) as exc:
            raise BackupError("verification failed: %s" % exc)

    def finish(self):
        try:
            self.tar.feed(self.decompressor.finish())
        except (CompressionError, ValueError) as exc:
            raise BackupError("verification failed: %s" % exc)
        if not self.tar.ended:
            raise BackupError("verification failed: the archive ends before its end-of-archive marker")
        return dict(method="sha256+decompress+tar-end-marker")

    def abort(self):
        pass


class VolumeWriter(BackupWriter):
    """A docker named volume as a compressed tar, checked to its end marker while it is written."""

    kind = "volume"
    tool = mf.VOLUME_TOOL

    def __init__(self, client, volume, image, compression, level, recipients=None):
        self.client, self.label, self.image = client, volume, image
        self.compression, self.level, self.recipients = compression, level, recipients

    def file_name(self, name):
        return mf.data_file_name(name, "tar", self.compression, encrypted=bool(self.recipients))

    def write(self, name, partial):
        check = TarCheck(self.compression)
        with helper(self.client, self.label, self.image) as container:
            facts = write_stream(archive_chunks(container), partial, self.compression, self.level, check,
                                 self.recipients)
        return dict(facts, volume=self.label, database=None, format="tar", compression=self.compression,
                    compression_level=self.level, helper_image=self.image, verified=True, data_bytes=check.tar.bytes,
                    members=check.tar.members)
