"""What strict JPEG decoding costs: OpenCV (what the node used) against the node's decoder
(header checks + libjpeg-turbo through simplejpeg with warnings as errors), side by side.

    python benchmarks/jpeg_decode.py [--size 1024 2048] [--quality 90] [--runs 20]

The frame is a smooth random picture (a 6 MB rgb8 frame at 1024x2048). Runs alternate
between the two decoders so that load hits both alike; medians of wall and CPU time.
Also prints peak memory of decoding a small JPEG whose header claims 4000x6000, each in a
fresh process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import cv2
import numpy as np

from anomaly_seg_ros.io.compressed import compressed_to_rgb

PEAK = """
import resource, sys, cv2, numpy as np
from anomaly_seg_ros.io.compressed import compressed_to_rgb
data = open(sys.argv[2], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    if sys.argv[1] == "opencv":
        cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), 4)
    else:
        compressed_to_rgb(data)
    outcome = "decoded"
except Exception as error:
    outcome = type(error).__name__
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{(after - before) / 1024:.0f} MB {outcome}")
"""


def opencv_decode(stream: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(stream, np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=(1024, 2048))
    parser.add_argument("--quality", type=int, default=90)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    height, width = args.size
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    frame = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, args.quality])
    assert ok
    stream = encoded.tobytes()
    decoders = {"opencv": opencv_decode, "node (strict)": compressed_to_rgb}
    wall: dict[str, list[float]] = {name: [] for name in decoders}
    cpu: dict[str, list[float]] = {name: [] for name in decoders}
    for _ in range(args.runs):
        for name, decode in decoders.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            decode(stream)
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
    print(f"load {os.getloadavg()[0]:.1f}; {height}x{width} JPEG q{args.quality}, "
          f"{len(stream) / 1e6:.2f} MB compressed, {frame.nbytes / 1e6:.1f} MB RGB, "
          f"medians of {args.runs}")  # fmt: skip
    base = statistics.median(wall["opencv"])
    for name in decoders:
        median = statistics.median(wall[name])
        print(f"  {name:14s} wall {median * 1e3:6.1f} ms ({median / base:.2f}x)  "
              f"cpu {statistics.median(cpu[name]) * 1e3:6.1f} ms")  # fmt: skip
    claims = bytearray(stream)
    sof = stream.find(b"\xff\xc0")
    claims[sof + 5 : sof + 9] = (4000).to_bytes(2, "big") + (6000).to_bytes(2, "big")
    path = "/tmp/jpeg_decode_claims.jpg"
    with open(path, "wb") as file:
        file.write(claims)
    for name in ("opencv", "node"):
        run = subprocess.run([sys.executable, "-c", PEAK, name, path], capture_output=True,
                             text=True, check=True)  # fmt: skip
        print(f"  header claiming 4000x6000 ({len(claims) / 1e3:.0f} KB), {name}: peak "
              f"+{run.stdout.strip()}")  # fmt: skip
    os.unlink(path)


if __name__ == "__main__":
    main()
