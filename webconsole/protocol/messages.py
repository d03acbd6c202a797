"""Hanami's websocket protobuf messages (contract §5.3), built at runtime without protoc.

The descriptor below is the verbatim ``hanami_messages.proto3`` schema: same message names, field
names, numbers and types (``values`` packed). It lives in a private descriptor pool so it can never
clash with another module that registers a file of the same name in the default pool.

Usage::

    msg = ClusterIO_Message(brickName="test_input", isLast=True, processType=REQUEST_TYPE,
                            numberOfValues=2, values=[0.5, 1.0])
    data = msg.SerializeToString()
    back = ClusterIO_Message.FromString(data)
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = [
    "ClusterIO_Message",
    "FileUpload_Message",
    "FileUploadResponse_Message",
    "REQUEST_TYPE",
    "TRAIN_TYPE",
    "SEGMENT_SIZE",
]

REQUEST_TYPE = 0  # ClusterProcessType.REQUEST_TYPE: forward pass only
TRAIN_TYPE = 1  # ClusterProcessType.TRAIN_TYPE: forward + backward pass
SEGMENT_SIZE = 131072  # upload chunk / progress segment size in bytes (§5.4)

_F = descriptor_pb2.FieldDescriptorProto


def _build_file() -> descriptor_pb2.FileDescriptorProto:
    """The FileDescriptorProto equivalent of hanami_messages.proto3."""
    f = descriptor_pb2.FileDescriptorProto(name="hanami_messages.proto3", syntax="proto3")
    enum = f.enum_type.add(name="ClusterProcessType")
    enum.value.add(name="REQUEST_TYPE", number=REQUEST_TYPE)
    enum.value.add(name="TRAIN_TYPE", number=TRAIN_TYPE)

    io = f.message_type.add(name="ClusterIO_Message")
    io.field.add(name="brickName", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    io.field.add(name="isLast", number=2, type=_F.TYPE_BOOL, label=_F.LABEL_OPTIONAL)
    io.field.add(name="processType", number=3, type=_F.TYPE_ENUM, label=_F.LABEL_OPTIONAL,
                 type_name=".ClusterProcessType")
    io.field.add(name="numberOfValues", number=4, type=_F.TYPE_UINT64, label=_F.LABEL_OPTIONAL)
    values = io.field.add(name="values", number=5, type=_F.TYPE_FLOAT, label=_F.LABEL_REPEATED)
    values.options.packed = True

    up = f.message_type.add(name="FileUpload_Message")
    up.field.add(name="position", number=1, type=_F.TYPE_UINT64, label=_F.LABEL_OPTIONAL)
    up.field.add(name="data", number=2, type=_F.TYPE_BYTES, label=_F.LABEL_OPTIONAL)

    resp = f.message_type.add(name="FileUploadResponse_Message")
    resp.field.add(name="success", number=1, type=_F.TYPE_BOOL, label=_F.LABEL_OPTIONAL)
    resp.field.add(name="errorMessage", number=2, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    return f


_POOL = descriptor_pool.DescriptorPool()
_FILE = _POOL.Add(_build_file())


def _message_class(name: str) -> type:
    descriptor = _POOL.FindMessageTypeByName(name)
    return message_factory.GetMessageClass(descriptor)


ClusterIO_Message = _message_class("ClusterIO_Message")
FileUpload_Message = _message_class("FileUpload_Message")
FileUploadResponse_Message = _message_class("FileUploadResponse_Message")
