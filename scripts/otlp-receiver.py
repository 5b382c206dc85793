"""An OTLP/HTTP metrics receiver for the tests: decodes every POST to /v1/metrics with the
official protobuf definitions (PyPI `opentelemetry-proto`) and appends it to OUT as one JSON
line (protobuf's JSON mapping). A body that does not decode is answered 400 and logged as
{"error": ...}, so a test sees an encoding mistake instead of a silent pass.

Usage: python otlp-receiver.py OUT   (prints `listening on PORT` once it listens)
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

OUT = sys.argv[1]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        req = ExportMetricsServiceRequest()
        try:
            req.ParseFromString(body)
            line = {"content_type": self.headers.get("Content-Type"), "request": MessageToDict(req)}
            status = 200
        except Exception as e:  # noqa: BLE001 - any decode failure is the test's finding
            line = {"error": str(e)}
            status = 400
        with open(OUT, "a") as f:
            f.write(json.dumps(line) + "\n")
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
print(f"listening on {server.server_address[1]}", flush=True)
server.serve_forever()
