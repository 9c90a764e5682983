"""Raw access to the objects an S3 store holds, for conformance suites that need it
(tests/s3_backend and the wrapper suite over S3 share it; the tests folder is on the path
because its conftest.py is)."""

from __future__ import annotations

from typing import Any

from nanosession import Store


class S3Raw:
    """Raw helpers over the store's own client: the objects as S3 holds them."""

    def raw_read(self, store: Store, key: str) -> bytes | None:
        backend: Any = store.backend
        try:
            response = backend.client.get_object(Bucket=backend.bucket,
                                                 Key=backend.object_name(key))
        except backend.client.exceptions.NoSuchKey:
            return None
        return response["Body"].read()

    def raw_write(self, store: Store, key: str, data: bytes) -> None:
        backend: Any = store.backend
        backend.client.put_object(Bucket=backend.bucket, Key=backend.object_name(key), Body=data)

    def raw_names(self, store: Store) -> list[str]:
        backend: Any = store.backend
        pages = backend.client.get_paginator("list_objects_v2").paginate(
            Bucket=backend.bucket, Prefix=backend.prefix)
        return [o["Key"][len(backend.prefix):] for p in pages for o in p.get("Contents", ())]
