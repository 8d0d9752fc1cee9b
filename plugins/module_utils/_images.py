# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

The images kind of the backup pipeline (``_backup``): the docker images a stack runs, as the tar of
``docker save`` streamed from the engine. The runbooks' stacks often build on the server (``up --build``)
and have no registry; without this, a server that is gone takes the only copy of the serving release's
images with it. ``serving_images`` picks them from the release ledger compose_release keeps.
"""

from __future__ import annotations

from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils._backup import BackupError, BackupWriter, write_stream
from ansible_collections.stackops.runbook.plugins.module_utils._docker import docker_errors, docker_sdk, saved_images
from ansible_collections.stackops.runbook.plugins.module_utils._release import good_releases, load_ledger
from ansible_collections.stackops.runbook.plugins.module_utils._tar import TarCheck

DEFAULT_LABEL = "images"


def serving_images(ledger_path, services=None):
    """(version, [{ref, id, service}]) of the newest good release in the ledger (of ``services``, or of
    every service it deployed). Raises BackupError when the ledger has none."""
    entries = load_ledger(ledger_path)
    candidates = good_releases(entries, services or [])
    if not candidates:
        raise BackupError("the release ledger %s holds no release that served healthy%s: deploy with compose_release "
                          "first, or name the images" % (ledger_path, " with %s" % ", ".join(services) if services
                                                         else ""))
    release = candidates[0]
    wanted = services or sorted(release["images"])
    return release.get("version"), [dict(release["images"][s], service=s) for s in wanted]


def _image(client, name):
    try:
        return client.images.get(name)
    except docker_sdk().errors.NotFound:
        return None


def resolve(client, images):
    """What to save for each image (``{ref, id}``, either may be missing): its reference while the reference
    still names the recorded id (so ``docker load`` brings the tag back), else the id itself. Raises
    BackupError for an image the engine does not have."""
    resolved = []
    with docker_errors("cannot look up the images"):
        for image in images:
            ref, wanted = image.get("ref"), image.get("id")
            found, save = (_image(client, ref), ref) if ref else (None, None)
            if found is None or (wanted and found.id != wanted):
                found, save = (_image(client, wanted), wanted) if wanted else (None, None)
            if found is None:
                raise BackupError("the image %s is not on this host (any more): pull or build it, or leave it out"
                                  % " / ".join(x for x in (ref, wanted) if x))
            resolved.append(dict(image, id=found.id, save=save, tags=found.tags))
    return resolved


class ImagesWriter(BackupWriter):
    """docker images as one ``docker save`` tar, checked to its end marker while it is written."""

    kind = "images"
    tool = mf.IMAGES_TOOL

    def __init__(self, client, label, images, compression, level, recipients=None, version=None):
        self.client, self.label, self.images = client, label, images
        self.compression, self.level, self.recipients, self.version = compression, level, recipients, version

    def file_name(self, name):
        return mf.data_file_name(name, "tar", self.compression, encrypted=bool(self.recipients))

    def write(self, name, partial):
        check = TarCheck(self.compression)
        names = sorted({image["save"] for image in self.images})
        facts = write_stream(saved_images(self.client, names), partial, self.compression, self.level, check,
                             self.recipients)
        return dict(facts, database=None, format="tar", compression=self.compression, compression_level=self.level,
                    verified=True, release=self.version, members=check.tar.members,
                    images=[dict(ref=i.get("ref"), id=i["id"], service=i.get("service"), tags=i["tags"])
                            for i in self.images])
