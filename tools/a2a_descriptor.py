"""Write the A2A v1.0 contract (``lf.a2a.v1``) as a ``FileDescriptorSet`` for ``buf generate``.

The Go stubs of ``A2AService`` are generated from the very descriptor the pinned a2a-sdk ships
(``a2a.types.a2a_pb2``), with its imports (``google/api/*``, well-known types) from the same
environment: the A2A contract then has one source, the a2a-sdk pin in ``uv.lock``, and nothing of
the spec or the SDK is copied into this repository. Bumping a2a-sdk regenerates the Go stubs
(``make gen``); the drift check notices when that was forgotten.

Usage: ``python tools/a2a_descriptor.py OUT.binpb`` (``scripts/gen.sh`` runs it).
"""

from __future__ import annotations

import sys
from pathlib import Path

from a2a.types import a2a_pb2
from google.protobuf import descriptor, descriptor_pb2


def descriptor_set(root: descriptor.FileDescriptor) -> descriptor_pb2.FileDescriptorSet:
    """``root`` and every file it imports, each after its own imports (the order protoc writes)."""
    out = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()

    def add(file: descriptor.FileDescriptor) -> None:
        if file.name in seen:
            return
        seen.add(file.name)
        for dependency in file.dependencies:
            add(dependency)
        file.CopyToProto(out.file.add())

    add(root)
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: a2a_descriptor.py OUT.binpb", file=sys.stderr)
        return 2
    Path(argv[1]).write_bytes(descriptor_set(a2a_pb2.DESCRIPTOR).SerializeToString(deterministic=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
