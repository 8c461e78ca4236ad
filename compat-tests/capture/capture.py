#!/usr/bin/env python3
"""Recording TCP proxy for Kafka request frames (Python stdlib only).

Listens on 127.0.0.1:PORT, forwards every connection byte for byte to an
upstream broker, and on the client-to-broker direction cuts the stream into
request frames (4-byte big-endian length, then the body: api_key i16,
api_version i16, correlation_id i32, ...). The body of each frame (without
its length prefix) is written to

    OUTDIR/<client>-<ApiName>-v<version>-<n>.bin

keeping only the first --keep frames per (api, version). Nothing is rewritten:
the bytes the proxy forwards are the bytes it received.

Upstream: either --upstream HOST:PORT, or --gregor BIN, which starts
`BIN serve --listen 127.0.0.1:0 --data-dir TMP --advertised-listener
127.0.0.1:<proxy port>` so that Metadata responses keep clients on the proxy.

On start it prints `proxy listening 127.0.0.1:NNNN` on stdout (flushed), and
`--port-file F` writes the port to F. Stops on SIGTERM / SIGINT, killing the
broker it started. A summary of the frames seen goes to stderr at exit.
"""

import argparse
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading

API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 4: "LeaderAndIsr",
    5: "StopReplica", 6: "UpdateMetadata", 7: "ControlledShutdown",
    8: "OffsetCommit", 9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup",
    12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups",
    16: "ListGroups", 17: "SaslHandshake", 18: "ApiVersions", 19: "CreateTopics",
    20: "DeleteTopics", 21: "DeleteRecords", 22: "InitProducerId",
    23: "OffsetForLeaderEpoch", 24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn",
    26: "EndTxn", 27: "WriteTxnMarkers", 28: "TxnOffsetCommit", 29: "DescribeAcls",
    30: "CreateAcls", 31: "DeleteAcls", 32: "DescribeConfigs", 33: "AlterConfigs",
    34: "AlterReplicaLogDirs", 35: "DescribeLogDirs", 36: "SaslAuthenticate",
    37: "CreatePartitions", 38: "CreateDelegationToken",
    39: "RenewDelegationToken", 40: "ExpireDelegationToken",
    41: "DescribeDelegationToken", 42: "DeleteGroups", 43: "ElectLeaders",
    44: "IncrementalAlterConfigs", 45: "AlterPartitionReassignments",
    46: "ListPartitionReassignments", 47: "OffsetDelete",
    48: "DescribeClientQuotas", 49: "AlterClientQuotas",
    50: "DescribeUserScramCredentials", 51: "AlterUserScramCredentials",
    52: "Vote", 53: "BeginQuorumEpoch", 54: "EndQuorumEpoch", 55: "DescribeQuorum",
    56: "AlterPartition", 57: "UpdateFeatures", 58: "Envelope",
    59: "FetchSnapshot", 60: "DescribeCluster", 61: "DescribeProducers",
    62: "BrokerRegistration", 63: "BrokerHeartbeat", 64: "UnregisterBroker",
    65: "DescribeTransactions", 66: "ListTransactions", 67: "AllocateProducerIds",
    68: "ConsumerGroupHeartbeat", 69: "ConsumerGroupDescribe",
    70: "ControllerRegistration", 71: "GetTelemetrySubscriptions",
    72: "PushTelemetry", 73: "AssignReplicasToDirs", 74: "ListConfigResources",
    75: "DescribeTopicPartitions", 76: "ShareGroupHeartbeat",
    77: "ShareGroupDescribe", 78: "ShareFetch", 79: "ShareAcknowledge",
    80: "AddRaftVoter", 81: "RemoveRaftVoter", 82: "UpdateRaftVoter",
    83: "InitializeShareGroupState", 84: "ReadShareGroupState",
    85: "WriteShareGroupState", 86: "DeleteShareGroupState",
    87: "ReadShareGroupStateSummary", 90: "DescribeShareGroupOffsets",
    91: "AlterShareGroupOffsets", 92: "DeleteShareGroupOffsets",
}

# Frames above this are forwarded but not recorded (a sanity cap, not a limit).
MAX_RECORD = 64 * 1024 * 1024


def api_name(key):
    return API_NAMES.get(key, "key%d" % key)


class Recorder:
    def __init__(self, outdir, client, keep):
        self.outdir = outdir
        self.client = client
        self.keep = keep
        self.lock = threading.Lock()
        self.seen = {}  # (key, version) -> count seen
        os.makedirs(outdir, exist_ok=True)

    def frame(self, body):
        if len(body) < 4:
            return
        key, version = struct.unpack(">hh", body[:4])
        with self.lock:
            n = self.seen.get((key, version), 0) + 1
            self.seen[(key, version)] = n
        if n > self.keep or len(body) > MAX_RECORD:
            return
        name = "%s-%s-v%d-%d.bin" % (self.client, api_name(key), version, n)
        path = os.path.join(self.outdir, name)
        with open(path + ".tmp", "wb") as f:
            f.write(body)
        os.replace(path + ".tmp", path)

    def summary(self):
        with self.lock:
            items = sorted(self.seen.items())
        return ", ".join(
            "%s v%d x%d" % (api_name(k), v, n) for (k, v), n in items
        )


def pump_requests(src, dst, rec):
    """Client -> broker: forward bytes unchanged, record each frame body."""
    buf = bytearray()
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            buf += data
            while len(buf) >= 4:
                (size,) = struct.unpack(">i", buf[:4])
                if size < 0:
                    # Not Kafka framing: stop parsing, keep forwarding.
                    buf = None
                    break
                if len(buf) < 4 + size:
                    break
                rec.frame(bytes(buf[4:4 + size]))
                del buf[:4 + size]
            if buf is None:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
                break
    except OSError:
        pass
    finally:
        for s in (dst, src):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def pump_plain(src, dst):
    """Broker -> client: forward bytes unchanged."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (dst, src):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def handle(client_sock, upstream, rec):
    try:
        up = socket.create_connection(upstream)
    except OSError as e:
        print("capture: upstream %s:%d: %s" % (upstream + (e,)), file=sys.stderr)
        client_sock.close()
        return
    for s in (client_sock, up):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t = threading.Thread(target=pump_plain, args=(up, client_sock), daemon=True)
    t.start()
    pump_requests(client_sock, up, rec)
    t.join()
    client_sock.close()
    up.close()


def start_gregor(binary, proxy_port, data_dir, log_path):
    cmd = [
        binary, "serve",
        "--listen", "127.0.0.1:0",
        "--data-dir", data_dir,
        "--advertised-listener", "127.0.0.1:%d" % proxy_port,
    ]
    log = open(log_path, "w") if log_path else None
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=log or subprocess.DEVNULL,
                            text=True, errors="replace")
    pat = re.compile(r"listening.*addr=(\d+\.\d+\.\d+\.\d+):(\d+)")
    addr = None
    for line in proc.stderr:
        if log:
            log.write(line)
            log.flush()
        m = pat.search(re.sub(r"\x1b\[[0-9;]*m", "", line))
        if m:
            addr = (m.group(1), int(m.group(2)))
            break
    if addr is None:
        proc.wait()
        raise SystemExit("capture: gregor exited before listening (rc=%s)" % proc.returncode)

    def drain():
        for line in proc.stderr:
            if log:
                log.write(line)
                log.flush()
    threading.Thread(target=drain, daemon=True).start()
    return proc, addr


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0, help="proxy port (0: any free one)")
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--client", required=True, help="file name prefix, e.g. kcat")
    ap.add_argument("--keep", type=int, default=2, help="frames kept per (api, version)")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--upstream", help="HOST:PORT of a running broker")
    g.add_argument("--gregor", help="gregor binary to start as the upstream")
    ap.add_argument("--data-dir", help="gregor data dir (default: a fresh temp dir)")
    ap.add_argument("--broker-log", help="file for gregor's stderr")
    ap.add_argument("--port-file", help="write the proxy port here once ready")
    args = ap.parse_args()

    rec = Recorder(args.outdir, args.client, args.keep)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", args.port))
    lsock.listen(64)
    port = lsock.getsockname()[1]

    proc = None
    if args.gregor:
        data_dir = args.data_dir or tempfile.mkdtemp(prefix="gregor-capture-")
        proc, upstream = start_gregor(args.gregor, port, data_dir, args.broker_log)
    else:
        host, _, p = args.upstream.rpartition(":")
        upstream = (host, int(p))

    def stop(*_):
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        print("capture: %s: %s" % (args.client, rec.summary()), file=sys.stderr)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.replace(args.port_file + ".tmp", args.port_file)
    print("proxy listening 127.0.0.1:%d upstream %s:%d" % ((port,) + tuple(upstream)), flush=True)

    while True:
        try:
            c, _ = lsock.accept()
        except OSError:
            continue
        threading.Thread(target=handle, args=(c, upstream, rec), daemon=True).start()


if __name__ == "__main__":
    main()
