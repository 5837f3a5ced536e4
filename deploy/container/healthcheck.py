"""The image's HEALTHCHECK: healthy when this container's node answers 200 on /readyz. An API node
(`serve`) listens on SPEECHSVC_PORT, a worker (`speechsvc worker`) on SPEECHSVC_METRICS_PORT; a node
listens on only one of them, so whichever answers 200 decides. Standard library only (no curl in a slim
image)."""

import os
import sys
import urllib.request

TIMEOUT_S = 3.0


def ready(port: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=TIMEOUT_S) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


ports = (os.environ.get("SPEECHSVC_PORT", "8080"), os.environ.get("SPEECHSVC_METRICS_PORT", "9091"))
sys.exit(0 if any(ready(port) for port in ports) else 1)
