"""Protobuf messages of §5.3: field numbers, packing and proto3 defaults."""

from __future__ import annotations

import struct

from webconsole.protocol.messages import (
    REQUEST_TYPE,
    SEGMENT_SIZE,
    TRAIN_TYPE,
    ClusterIO_Message,
    FileUpload_Message,
    FileUploadResponse_Message,
)


def test_cluster_io_known_encoding() -> None:
    msg = ClusterIO_Message(brickName="ab", isLast=True, processType=TRAIN_TYPE,
                            numberOfValues=2, values=[0.0, 1.0])
    expected = (
        b"\x0a\x02ab"  # 1: brickName (length-delimited)
        b"\x10\x01"  # 2: isLast
        b"\x18\x01"  # 3: processType TRAIN_TYPE
        b"\x20\x02"  # 4: numberOfValues
        b"\x2a\x08" + struct.pack("<2f", 0.0, 1.0)  # 5: values, packed floats
    )
    assert msg.SerializeToString() == expected


def test_cluster_io_round_trip() -> None:
    msg = ClusterIO_Message(brickName="test_output", isLast=False, processType=REQUEST_TYPE,
                            numberOfValues=3, values=[0.25, -1.5, 3.0])
    back = ClusterIO_Message.FromString(msg.SerializeToString())
    assert back.brickName == "test_output"
    assert list(back.values) == [0.25, -1.5, 3.0]
    assert back.numberOfValues == 3 and back.processType == REQUEST_TYPE and not back.isLast


def test_defaults_are_absent_on_the_wire() -> None:
    assert ClusterIO_Message(brickName="", isLast=False, processType=REQUEST_TYPE).SerializeToString() == b""
    assert FileUploadResponse_Message(success=False, errorMessage="").SerializeToString() == b""
    decoded = ClusterIO_Message.FromString(b"")
    assert (decoded.brickName, decoded.isLast, decoded.processType, list(decoded.values)) == ("", False, 0, [])


def test_hanami_train_ack() -> None:
    # the acknowledgement Hanami sends for isLast=false messages (§5.5)
    ack = ClusterIO_Message(isLast=False, processType=TRAIN_TYPE, numberOfValues=1, values=[0.0])
    assert ack.SerializeToString() == b"\x18\x01\x20\x01\x2a\x04\x00\x00\x00\x00"


def test_file_upload_messages() -> None:
    up = FileUpload_Message(position=SEGMENT_SIZE, data=b"x")
    assert up.SerializeToString() == b"\x08\x80\x80\x08\x12\x01x"
    assert FileUpload_Message.FromString(up.SerializeToString()).position == 131072
    resp = FileUploadResponse_Message.FromString(b"\x08\x01")
    assert resp.success and resp.errorMessage == ""
    bad = FileUploadResponse_Message(success=False, errorMessage="Failed to write data to disc")
    assert FileUploadResponse_Message.FromString(bad.SerializeToString()).errorMessage == "Failed to write data to disc"
