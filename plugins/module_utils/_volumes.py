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
from ansible_collections.stackops.runbook.plugins.module_utils._backup import BackupWriter, write_stream
from ansible_collections.stackops.runbook.plugins.module_utils._docker import ContainerError, docker_sdk, live_containers
from ansible_collections.stackops.runbook.plugins.module_utils._tar import TarCheck

MOUNT = "/volume"
HELPER_LABEL = "io.stackops.runbook.volume-helper"


def image_of_a_user(client, volume_name):
    """The image of a container (running or not) that uses the volume, or None: it is on the host already."""
    users = live_containers(client, {"volume": volume_name}, include_stopped=True)
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
