"""Parse every config.pbtxt of a Triton model repository with tritonclient's protobuf types; run in .venv-serve.

Usage: python tests/serve/parse_configs.py REPOSITORY
Prints {model folder: the config as Triton's JSON (proto field names)}. text_format.Parse refuses unknown fields
and values of the wrong type, as tritonserver does when it loads the file.
"""
import json
import sys
from pathlib import Path

from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

out = {}
for path in sorted(Path(sys.argv[1]).glob("*/config.pbtxt")):
    config = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
    out[path.parent.name] = json_format.MessageToDict(config, preserving_proto_field_name=True)
print(json.dumps(out))
