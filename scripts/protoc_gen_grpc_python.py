"""A protoc plugin (stdin: CodeGeneratorRequest, stdout: CodeGeneratorResponse) that
runs grpcio-tools' built-in grpc_python generator, which has no plugin binary of its own.

buf calls it as a local plugin; the request's descriptors go to the grpcio-tools protoc
as a descriptor set, so no system protoc and no .proto paths are needed.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def main() -> int:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL)
    with tempfile.TemporaryDirectory() as tmp:
        descriptors = Path(tmp) / "in.binpb"
        out = Path(tmp) / "out"
        out.mkdir()
        files = descriptor_pb2.FileDescriptorSet(file=request.proto_file)
        descriptors.write_bytes(files.SerializeToString())
        args = ["protoc", f"--descriptor_set_in={descriptors}", f"--grpc_python_out={out}",
                *request.file_to_generate]
        if protoc.main(args) != 0:
            response.error = "grpc_tools.protoc failed for " + " ".join(request.file_to_generate)
        for path in sorted(out.rglob("*.py")):
            response.file.add(name=str(path.relative_to(out)), content=path.read_text())
    sys.stdout.buffer.write(response.SerializeToString())
    return 0


if __name__ == "__main__":
    sys.exit(main())
