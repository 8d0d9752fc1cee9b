# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The offsite copy of backups in S3-compatible storage (AWS S3, MinIO, Ceph, ...).
    DOCUMENTATION = r"""
options:
  s3:
    description:
      - Where the offsite copies of the backups live, in S3-compatible storage.
      - Credentials may come from these options or from the usual AWS environment and files.
    type: dict
    suboptions:
      bucket:
        description: The bucket.
        type: str
        required: true
      prefix:
        description: Key prefix ("folder") of the backups in the bucket, without a trailing slash.
        type: str
        default: ''
      endpoint_url:
        description: Endpoint of an S3-compatible service such as MinIO (C(https://minio.example.com:9000)).
        type: str
      region:
        description: The bucket's region.
        type: str
      access_key:
        description: Access key id.
        type: str
      secret_key:
        description: Secret access key.
        type: str
      session_token:
        description: Session token of temporary credentials.
        type: str
      sse:
        description: Server-side encryption of the uploaded objects.
        type: str
        choices: [AES256, 'aws:kms']
      sse_kms_key_id:
        description: KMS key id when O(s3.sse=aws:kms).
        type: str
      storage_class:
        description: Storage class of the uploaded objects, such as C(STANDARD_IA).
        type: str
      object_lock_mode:
        description:
          - S3 Object Lock retention set on each uploaded backup and manifest (the bucket needs Object Lock, hence
            versioning). V(GOVERNANCE) can be lifted by a user with the s3:BypassGovernanceRetention permission,
            V(COMPLIANCE) by nobody until it expires. Needs O(s3.object_lock_days).
          - Retention in S3 skips backups whose lock has not expired and lists them in C(locked) with the date it
            ends; they are pruned by a later run once it has. In a versioned bucket a pruned object becomes a
            noncurrent version; a lifecycle rule that expires noncurrent versions reclaims the space.
        type: str
        choices: [GOVERNANCE, COMPLIANCE]
      object_lock_days:
        description: Days the lock of each uploaded object lasts, from the upload (with O(s3.object_lock_mode)).
        type: int
      validate_certs:
        description: Whether to check the endpoint's TLS certificate.
        type: bool
        default: true
      max_attempts:
        description: Attempts per S3 request (with exponential backoff) before giving up.
        type: int
        default: 5
      connect_timeout:
        description: Seconds to wait for a connection to the endpoint, per attempt.
        type: int
        default: 10
      read_timeout:
        description:
          - Seconds to wait for the endpoint's answer to a request, per attempt. An endpoint that accepts and never
            answers costs this much per attempt.
        type: int
        default: 60
      transfer_timeout:
        description:
          - Seconds one S3 operation (an upload, a download, a listing) may take in all, attempts included; no new
            attempt starts after it, so an operation ends within this plus one O(s3.read_timeout).
        type: int
        default: 21600
      multipart_chunk_size_mb:
        description: Size of the parts of a multipart upload, in MiB (5 at least).
        type: int
        default: 16
requirements:
  - boto3 when O(s3) is set.
"""
