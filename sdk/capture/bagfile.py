"""Cheap structural check of a ROS1 .bag file before librealsense sees it.

librealsense 2.54 can hang or crash on a file that is not a well-formed, indexed ROS1 bag, so
`BagReplay` walks the record structure first, in pure Python and with seeks only (no
decompression): magic line, bag header, every chunk and index-data record up to the index,
then exactly ``conn_count`` connection and ``chunk_count`` chunk-info records to the end of the
file. That catches missing, empty, foreign, truncated, unindexed (recording never closed) and
most byte-level corruption of record headers. Pixels inside an lz4 chunk carry no checksum in
the ROS bag format, so a flipped pixel byte cannot be detected by anyone.

ROS bag 2.0 layout (http://wiki.ros.org/Bags/Format/2.0): every record is
``<u32 header_len><header><u32 data_len><data>``; the header is a list of
``<u32 field_len>name=value`` fields with an ``op`` byte naming the record type.
"""
from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sdk.errors import BagFormatError

MAGIC = b"#ROSBAG V2.0\n"

OP_MESSAGE = 0x02
OP_BAG_HEADER = 0x03
OP_INDEX_DATA = 0x04
OP_CHUNK = 0x05
OP_CHUNK_INFO = 0x06
OP_CONNECTION = 0x07

#: No legitimate record header in a librealsense bag is anywhere near this big; a larger value
#: means a corrupt length field (and reading it would waste memory).
_MAX_HEADER_LEN = 1 << 20
_COMPRESSIONS = (b"none", b"lz4", b"bz2")
#: librealsense topic of one video stream's pixels, e.g. /device_0/sensor_0/Depth_0/image/data
_IMAGE_TOPIC = re.compile(r"^/device_(\d+)/sensor_(\d+)/([A-Za-z]+)_(\d+)/image/data$")
#: librealsense's stream type names in topics -> sdk.types.Stream values
_STREAM_NAMES = {"Depth": "depth", "Infrared": "ir", "Color": "color"}


@dataclass(frozen=True)
class BagSummary:
    """What the structural check learned: sizes, counts and the recorded image streams."""

    path: str
    size: int
    index_pos: int
    chunk_count: int
    conn_count: int
    #: connection topics from the index, in file order
    topics: tuple[str, ...]
    #: sdk Stream values ("depth", "ir", "color") that have an image topic
    streams: frozenset[str]
    #: number of recorded image messages (frames) per stream, from the chunk index
    frame_counts: dict[str, int]


def _parse_header(path: Path, blob: bytes, where: int) -> dict[str, bytes]:
    fields: dict[str, bytes] = {}
    pos = 0
    while pos < len(blob):
        if pos + 4 > len(blob):
            raise BagFormatError(path, f"corrupt record header at byte {where}")
        (length,) = struct.unpack_from("<I", blob, pos)
        pos += 4
        if length == 0 or pos + length > len(blob):
            raise BagFormatError(path, f"corrupt record header field at byte {where}")
        field = blob[pos : pos + length]
        pos += length
        name, sep, value = field.partition(b"=")
        if not sep or not name:
            raise BagFormatError(path, f"corrupt record header field at byte {where}")
        try:
            fields[name.decode("ascii")] = value
        except UnicodeDecodeError:
            raise BagFormatError(path, f"corrupt record header field name at byte {where}") from None
    if "op" not in fields or len(fields["op"]) != 1:
        raise BagFormatError(path, f"record at byte {where} has no valid op field")
    return fields


def _read_record_head(path: Path, f: BinaryIO, pos: int, size: int) -> tuple[int, dict[str, bytes], int, int]:
    """Read the header of the record at ``pos``: (op, fields, data_pos, data_len)."""
    if pos + 4 > size:
        raise BagFormatError(path, f"truncated: record at byte {pos} runs past the end of the file ({size} bytes)")
    f.seek(pos)
    (header_len,) = struct.unpack("<I", f.read(4))
    if header_len > _MAX_HEADER_LEN:
        raise BagFormatError(path, f"corrupt record header length {header_len} at byte {pos}")
    if pos + 4 + header_len + 4 > size:
        raise BagFormatError(path, f"truncated: record at byte {pos} runs past the end of the file ({size} bytes)")
    blob = f.read(header_len)
    fields = _parse_header(path, blob, pos)
    (data_len,) = struct.unpack("<I", f.read(4))
    data_pos = pos + 8 + header_len
    if data_pos + data_len > size:
        raise BagFormatError(path, f"truncated: record at byte {pos} runs past the end of the file ({size} bytes)")
    return fields["op"][0], fields, data_pos, data_len


def _u32(path: Path, fields: dict[str, bytes], name: str, where: int) -> int:
    value = fields.get(name)
    if value is None or len(value) != 4:
        raise BagFormatError(path, f"record at byte {where} lacks a valid {name!r} field")
    return struct.unpack("<I", value)[0]


def _u64(path: Path, fields: dict[str, bytes], name: str, where: int) -> int:
    value = fields.get(name)
    if value is None or len(value) != 8:
        raise BagFormatError(path, f"record at byte {where} lacks a valid {name!r} field")
    return struct.unpack("<Q", value)[0]


def check_bag(path: str | os.PathLike[str]) -> BagSummary:
    """Validate the ROS1 bag structure of ``path``; raise BagFormatError naming the problem."""
    path = Path(path)
    if not path.exists():
        raise BagFormatError(path, "file not found")
    if not path.is_file():
        raise BagFormatError(path, "not a regular file")
    try:
        f = open(path, "rb")
    except OSError as error:
        raise BagFormatError(path, f"cannot be read ({error.strerror})") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise BagFormatError(path, "empty file")
        head = f.read(len(MAGIC))
        if head != MAGIC:
            if MAGIC.startswith(head):
                raise BagFormatError(path, "truncated: the file ends inside the ROS bag magic line")
            raise BagFormatError(path, "not a ROS bag (no '#ROSBAG V2.0' header); only ROS1 .bag recordings are supported")

        op, fields, data_pos, data_len = _read_record_head(path, f, len(MAGIC), size)
        if op != OP_BAG_HEADER:
            raise BagFormatError(path, "corrupt: the first record is not a bag header")
        index_pos = _u64(path, fields, "index_pos", len(MAGIC))
        conn_count = _u32(path, fields, "conn_count", len(MAGIC))
        chunk_count = _u32(path, fields, "chunk_count", len(MAGIC))
        if index_pos == 0:
            raise BagFormatError(
                path, "unindexed: the recording was not closed (no index was written); re-record it"
            )
        first = data_pos + data_len
        if index_pos > size:
            raise BagFormatError(path, f"truncated: the index should start at byte {index_pos} but the file has {size} bytes")
        if index_pos < first:
            raise BagFormatError(path, "corrupt: the index position points into the bag header")

        # Data section: chunks, each followed by its index-data records.
        chunk_positions: list[int] = []
        pos = first
        while pos < index_pos:
            op, fields, data_pos, data_len = _read_record_head(path, f, pos, size)
            if op == OP_CHUNK:
                if fields.get("compression") not in _COMPRESSIONS:
                    raise BagFormatError(path, f"corrupt chunk at byte {pos}: unknown compression")
                _u32(path, fields, "size", pos)
                chunk_positions.append(pos)
            elif op == OP_INDEX_DATA:
                count = _u32(path, fields, "count", pos)
                if data_len != 12 * count:
                    raise BagFormatError(path, f"corrupt index data at byte {pos}")
            else:
                raise BagFormatError(path, f"corrupt: unexpected record type {op} at byte {pos}")
            pos = data_pos + data_len
        if pos != index_pos:
            raise BagFormatError(path, "corrupt: the records do not end where the index starts")
        if len(chunk_positions) != chunk_count:
            raise BagFormatError(path, f"corrupt: header says {chunk_count} chunks, file has {len(chunk_positions)}")

        # Index section: connections, then chunk infos, up to the last byte.
        topics: list[str] = []
        conn_topics: dict[int, str] = {}
        infos: list[int] = []
        messages: dict[int, int] = {}
        while pos < size:
            op, fields, data_pos, data_len = _read_record_head(path, f, pos, size)
            if op == OP_CONNECTION:
                conn = _u32(path, fields, "conn", pos)
                try:
                    topics.append(fields.get("topic", b"").decode("utf-8"))
                except UnicodeDecodeError:
                    raise BagFormatError(path, f"corrupt connection record at byte {pos}") from None
                conn_topics[conn] = topics[-1]
            elif op == OP_CHUNK_INFO:
                infos.append(_u64(path, fields, "chunk_pos", pos))
                count = _u32(path, fields, "count", pos)
                if data_len != 8 * count:
                    raise BagFormatError(path, f"corrupt chunk info at byte {pos}")
                # data: (connection id, message count) per connection in the chunk
                f.seek(data_pos)
                pairs = struct.unpack(f"<{2 * count}I", f.read(data_len))
                for conn, n in zip(pairs[0::2], pairs[1::2]):
                    messages[conn] = messages.get(conn, 0) + n
            else:
                raise BagFormatError(path, f"corrupt: unexpected record type {op} in the index at byte {pos}")
            pos = data_pos + data_len
        if len(topics) != conn_count or len(infos) != chunk_count:
            raise BagFormatError(
                path,
                f"truncated or corrupt index: expected {conn_count} connections and {chunk_count} chunk infos, "
                f"found {len(topics)} and {len(infos)}",
            )
        if sorted(infos) != chunk_positions:
            raise BagFormatError(path, "corrupt: the index does not point at the chunks in the file")

        if any(conn not in conn_topics for conn in messages):
            raise BagFormatError(path, "corrupt: the index counts messages of an unknown connection")

    frame_counts: dict[str, int] = {}
    for conn, topic in conn_topics.items():
        match = _IMAGE_TOPIC.match(topic)
        if match and match.group(3) in _STREAM_NAMES and messages.get(conn, 0) > 0:
            stream = _STREAM_NAMES[match.group(3)]
            frame_counts[stream] = frame_counts.get(stream, 0) + messages[conn]
    streams = set(frame_counts)
    return BagSummary(
        path=str(path),
        size=size,
        index_pos=index_pos,
        chunk_count=chunk_count,
        conn_count=conn_count,
        topics=tuple(topics),
        streams=frozenset(streams),
        frame_counts=frame_counts,
    )
