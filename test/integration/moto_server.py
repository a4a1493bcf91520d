"""Starts moto's server on 127.0.0.1 and a given port, and stops it when its parent dies.

The integration tier's global setup runs this script; if the test run is killed (even with
SIGKILL), the parent goes away and this process stops the emulator and exits, so no emulator is
ever left behind. Prints READY once the server answers.
"""
import os
import sys
import time
import urllib.request

try:
    from moto.server import ThreadedMotoServer
except ImportError as error:  # reported by the global setup with what to install
    print(f"MOTO-MISSING {error}", flush=True)
    sys.exit(3)

port = int(sys.argv[1])
parent = os.getppid()
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
for _ in range(200):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
        break
    except Exception:  # not listening yet
        time.sleep(0.05)
print("READY", flush=True)
try:
    while os.getppid() == parent:
        time.sleep(0.5)
finally:
    server.stop()
