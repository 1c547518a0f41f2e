"""syft's on-disk blob storage, with blobs found by name in the server's own directory.

syft 0.9.5 stores each blob's *absolute* path in its database. A domain's syft state is
used at two paths: ``DIR/syft`` when the owner's process hosts the server (embedded), and
``/state`` when the confined server serves it. So a blob is read (and deleted) by its file
name, the blob's id, under whichever directory this server was given; a stored path's
directories are never followed. Writing still goes to the path syft allocated, which this
same server allocated just before under its own directory.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any


def blob_config(directory: Path) -> Any:
    """The blob storage configuration for a server whose blobs live in ``directory``."""
    from syft.store.blob_storage.on_disk import (
        OnDiskBlobStorageClientConfig,
        OnDiskBlobStorageConfig,
    )

    return OnDiskBlobStorageConfig(
        client_type=_client_class(),
        client_config=OnDiskBlobStorageClientConfig(base_directory=directory),
    )


@cache
def _client_class() -> type:
    from syft.store.blob_storage.on_disk import (
        OnDiskBlobStorageClient,
        OnDiskBlobStorageConnection,
    )
    from syft.types.blob_storage import SecureFilePathLocation

    class Connection(OnDiskBlobStorageConnection):
        def _here(self, fp: Any) -> Any:
            return SecureFilePathLocation(id=fp.id, path=Path(fp.path).name)

        def read(self, fp: Any, type_: type | None, **kwargs: Any) -> Any:
            return super().read(self._here(fp), type_, **kwargs)

        def delete(self, fp: Any) -> Any:
            return super().delete(self._here(fp))

    class Client(OnDiskBlobStorageClient):
        def connect(self) -> Any:
            return Connection(self.config.base_directory)

    return Client
