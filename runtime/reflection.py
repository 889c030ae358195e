"""gRPC server reflection under both names clients ask for: ``grpc.reflection.v1`` and ``v1alpha``.

grpcio-reflection 1.85.1 ships only ``grpc.reflection.v1alpha``; current grpcurl and
``buf curl`` ask for ``grpc.reflection.v1`` first and fall back to v1alpha only after an
UNIMPLEMENTED. The v1 protocol is v1alpha promoted unchanged (same messages, same field
numbers, another package), so one servicer answers both: bytes of a v1 request parse as
the v1alpha message and the v1alpha answer is a valid v1 answer.

So that the v1 service can itself be listed and described, its file descriptor is derived
from the v1alpha one (package and file renamed, references rewritten) and added to the
default descriptor pool, the one the servicer reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import _async as reflection_aio  # public as ``reflection.aio``, unseen by mypy
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc as v1alpha_grpc

V1ALPHA_SERVICE = reflection.SERVICE_NAME
V1_PACKAGE = "grpc.reflection.v1"
V1_SERVICE = f"{V1_PACKAGE}.ServerReflection"
V1_FILE = "grpc/reflection/v1/reflection.proto"
SERVICE_NAMES = (V1_SERVICE, V1ALPHA_SERVICE)


def v1_file() -> descriptor.FileDescriptor:
    """The ``grpc.reflection.v1`` file descriptor, added to the default pool on first use."""
    pool = descriptor_pool.Default()
    try:
        return pool.FindFileByName(V1_FILE)
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    v1alpha_pb2.DESCRIPTOR.CopyToProto(proto)
    old = f".{proto.package}."
    new = f".{V1_PACKAGE}."
    proto.name, proto.package = V1_FILE, V1_PACKAGE
    proto.ClearField("options")  # language packages named after v1alpha

    def rename(messages: Sequence[descriptor_pb2.DescriptorProto]) -> None:
        for message in messages:
            for f in message.field:
                if f.type_name.startswith(old):
                    f.type_name = new + f.type_name.removeprefix(old)
            rename(message.nested_type)

    rename(proto.message_type)
    for service in proto.service:
        for method in service.method:
            method.input_type = new + method.input_type.removeprefix(old)
            method.output_type = new + method.output_type.removeprefix(old)
    return pool.AddSerializedFile(proto.SerializeToString())


def enable(service_names: Sequence[str], server: grpc.aio.Server) -> None:
    """Serve reflection on ``server`` under both protocol names, listing ``service_names`` and both."""
    v1_file()
    servicer = reflection_aio.ReflectionServicer([*service_names, *SERVICE_NAMES])
    v1alpha_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=v1alpha_pb2.ServerReflectionRequest.FromString,
        response_serializer=v1alpha_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(V1_SERVICE, {"ServerReflectionInfo": v1}),))
