"""A fake tradewired for the clients' trust tests: it listens on argv[1], prints
"ready UID" once listening, then "conn N" for each connection it accepted (N = the bytes
that client sent). Run as another user, a correct client must refuse it and send nothing.
The Python and shell suites pass this file's text to `python3 -c` (no path needs to be
readable by that user)."""
import os, socket, sys

path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o777)
s.listen(8)
print("ready", os.getuid(), flush=True)
while True:
    c, _ = s.accept()
    c.settimeout(3.0)
    n = 0
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            n += len(b)
    except OSError:
        pass
    c.close()
    print("conn", n, flush=True)
