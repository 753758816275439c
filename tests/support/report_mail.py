"""Test helpers for the report tests (standard library + aiosmtpd).

  report_mail.py sink --port P --dir D   a real SMTP server writing each message as D/<n>.eml;
                                         prints "ready" once listening.
  report_mail.py parse < raw.eml         prints the message as JSON: subject, from, to, and
                                         the decoded text parts by content type, the
                                         MIME tree (content types, nested) and the
                                         images (Content-ID, disposition, PNG size,
                                         base64 data).
"""

import argparse
import base64
import email
import json
import os
import signal
import sys
import uuid
from email import policy


def tree(part) -> object:
    if part.is_multipart():
        return {part.get_content_type(): [tree(p) for p in part.iter_parts()]}
    return part.get_content_type()


def png_size(data: bytes) -> list:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return [0, 0]
    return [int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")]


def parse(raw: bytes) -> dict:
    msg = email.message_from_bytes(raw, policy=policy.default)
    parts = {}
    images = []
    for part in msg.walk():
        ct = part.get_content_type()
        if ct.startswith("text/"):
            parts[ct] = part.get_content()
        elif ct.startswith("image/"):
            data = part.get_payload(decode=True)
            cid = str(part["content-id"] or "").strip()
            images.append(
                {
                    "content_type": ct,
                    "content_id": cid[1:-1] if cid.startswith("<") else cid,
                    "disposition": part.get_content_disposition(),
                    "size": png_size(data),
                    "bytes": len(data),
                    "data": base64.b64encode(data).decode(),
                }
            )
    return {
        "subject": str(msg["subject"]),
        "from": str(msg["from"]),
        "to": str(msg["to"]),
        "parts": parts,
        "tree": tree(msg),
        "images": images,
    }


def sink(port: int, out: str) -> None:
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            name = os.path.join(out, f"{uuid.uuid4().hex}.eml")
            with open(name + ".tmp", "wb") as f:
                f.write(envelope.original_content or envelope.content)
            os.rename(name + ".tmp", name)
            return "250 OK"

    c = Controller(Handler(), hostname="127.0.0.1", port=port)
    c.start()
    print("ready", flush=True)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
    c.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sink")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--dir", required=True)
    sub.add_parser("parse")
    a = ap.parse_args()
    if a.cmd == "sink":
        sink(a.port, a.dir)
    else:
        json.dump(parse(sys.stdin.buffer.read()), sys.stdout)
