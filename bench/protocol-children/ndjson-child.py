"""Child for bench/protocol.ts: the Python counterpart of ndjson-child.mjs.

Newline-delimited JSON over stdin/stdout, standard library only. Request line
``{"requestId", "deadlineMs", "event": "<event JSON as a string>"}``, answer
line ``{"requestId", "result": "<result JSON as a string>"}`` (the event and
result are encoded twice, which Nimbus's binary frames avoid). The handler does
the same work as the one given to runtimes/python/bootstrap.py.
"""

import json
import sys


def handler(event, context):
    return {
        "ok": True,
        "n": event["n"],
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": '{"message":"hello"}',
    }


def main():
    stdin = sys.stdin.buffer
    out = sys.stdout.buffer
    loads = json.loads
    dumps = json.dumps
    while True:
        line = stdin.readline()
        if not line:
            return
        msg = loads(line)
        result = dumps(handler(loads(msg["event"]), None), separators=(",", ":"))
        out.write(dumps({"requestId": msg["requestId"], "result": result}, separators=(",", ":")).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    main()
