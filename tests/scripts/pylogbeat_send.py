"""Sends numbered events to a beats server with pylogbeat, one window per batch,
waiting for each window's ACK (pylogbeat's send() returns once it has it).

usage: pylogbeat_send.py PORT FIRST_ID COUNT BATCH [CA CERT KEY]
"""
import sys

from pylogbeat import PyLogBeatClient


def main():
    port, first, count, batch = (int(a) for a in sys.argv[1:5])
    tls = {}
    if len(sys.argv) > 5:
        ca, cert, key = sys.argv[5:8]
        tls = dict(ssl_enable=True, ssl_verify=True, ca_certs=ca, certfile=cert, keyfile=key)
    client = PyLogBeatClient("127.0.0.1", port, timeout=60, **tls)
    client.connect()
    try:
        ids = list(range(first, first + count))
        for start in range(0, count, batch):
            client.send([
                {
                    "@metadata": {"beat": "pylogbeat", "version": "2.1.0"},
                    "message": f"event {i}",
                    "id": i,
                }
                for i in ids[start:start + batch]
            ])
    finally:
        client.close()
    print(f"sent {count}")


if __name__ == "__main__":
    main()
