#!/usr/bin/env python3
"""zproc_client - a reference client of the zproc store, written from
doc/PROTOCOL.md alone (pyzmq; Debian: python3-zmq).

As a module:

    from zproc_client import Store, Watch
    store = Store("ipc:///tmp/zproc-AbC123/store")
    store.set(b"jobs/1", b"queued")
    store.get(b"jobs/1")                    # b"queued"
    store.incr(b"hits", 5)                  # 5
    watch = Watch(store.endpoint, b"jobs/", baseline=store.hello())
    watch.next()                            # ("EVENT", key, value, seq, flags)

As a program:

    zproc_client.py check ENDPOINT [MAILBOX]

runs every command of the protocol against the store at ENDPOINT and checks
each rule of doc/PROTOCOL.md the test suite relies on, one "ok - ..." line
each; the first rule the store does not follow ends it with "not ok - ..."
and exit status 1. MAILBOX names a worker of that context that records
each plain message it gets as "echo/last" = "SENDER:TEXT". The store's
change log must hold at most 16 changes (ZPROC_LOG_CHANGES=16), so that a
gap can be made. Last, it prints "READY-FOR-SHUTDOWN", parks a request and
expects SHUTDOWN when the context is destroyed.
"""

import os
import struct
import sys
import time

import zmq

VERSION = 1

#   Commands (section 3)
HELLO, GET, SET, DEL, EXISTS, KEYS, SIZE, INCR, CAS, DUMP, WAIT_CHANGE, \
    WAIT_EQUAL, WAIT_AVAILABLE, CANCEL, WATCH, CREDIT, EVENT, GAP, TXN, SINCE, \
    INFO = range(1, 22)

#   Status codes (section 4)
STATUS = ["OK", "NOT_FOUND", "INVALID", "TOO_LARGE", "CONFLICT", "DENIED",
          "SHUTDOWN", "PROTOCOL", "NO_BUFFERS"]

#   Header flags (section 2)
ABSENT, MORE, RESET, NOTICE = 1, 2, 4, 8

#   Header: version, command, status, flags, request id (4 bytes), seq (8
#   bytes), big-endian
HEADER = struct.Struct(">BBBBIQ")


class StoreError(Exception):
    """A reply with a status other than OK"""

    def __init__(self, status, command):
        self.status = status
        name = STATUS[status] if status < len(STATUS) else str(status)
        self.name = name
        super().__init__("%s answered %s" % (command, name))


class Reply:
    """A reply: its header fields and its frames (the header excluded)"""

    def __init__(self, frames):
        (self.version, self.command, self.status, self.flags, self.request_id,
         self.seq) = HEADER.unpack(frames[0])
        self.frames = frames[1:]


def encode(command, request_id=0, seq=0, flags=0, status=0):
    return HEADER.pack(VERSION, command, status, flags, request_id, seq)


def int64(value):
    """An integer frame: 8 bytes, big-endian, two's complement"""
    return struct.pack(">q", value)


class Store:
    """A state handle: one DEALER socket, requests answered by request id"""

    def __init__(self, endpoint, server_key=None, cert=None, timeout=5000):
        self.endpoint = endpoint
        self.context = zmq.Context.instance()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.linger = 0
        if server_key:
            public, secret = cert or zmq.curve_keypair()
            self.socket.curve_serverkey = server_key
            self.socket.curve_publickey = public
            self.socket.curve_secretkey = secret
        self.socket.connect(endpoint)
        self.timeout = timeout
        self.next_id = 0
        self.seq = 0                        # The highest seq seen: the baseline

    def close(self):
        self.socket.close()

    def send(self, command, frames=(), flags=0, seq=None):
        """Send a request; returns its request id. No empty delimiter frame:
        the header is the first frame."""
        self.next_id += 1
        header = encode(command, self.next_id, self.seq if seq is None else seq, flags)
        self.socket.send_multipart([header] + list(frames))
        return self.next_id

    def send_raw(self, frames):
        self.socket.send_multipart(frames)

    def receive(self, request_id, timeout=None):
        """The reply to request_id; other replies are dropped (a probe has
        request id 0). None when none came within timeout msecs."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout / 1000.0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.socket.poll(int(remaining * 1000) + 1):
                return None
            reply = Reply(self.socket.recv_multipart())
            if reply.request_id == request_id:
                self.seq = max(self.seq, reply.seq)
                return reply

    def call(self, command, frames=(), flags=0, seq=None, timeout=None, ok=True):
        """One round trip; raises StoreError unless the status is OK (or
        returns the reply whatever its status when ok is False)"""
        reply = self.receive(self.send(command, frames, flags, seq), timeout)
        if reply is None:
            raise TimeoutError("no reply to command %d" % command)
        if ok and reply.status != 0:
            raise StoreError(reply.status, command)
        return reply

    #   The commands
    def hello(self):
        return self.call(HELLO).seq

    def get(self, key):
        return self.call(GET, [key]).frames[0]

    def set(self, key, value, flags=0):
        return self.call(SET, [key, value], flags).seq

    def delete(self, key):
        return self.call(DEL, [key]).seq

    def exists(self, key):
        return self.call(EXISTS, [key], ok=False).status == 0

    def keys(self, prefix=b""):
        return self.call(KEYS, [prefix]).frames

    def size(self):
        return struct.unpack(">Q", self.call(SIZE).frames[0])[0]

    def incr(self, key, delta=1):
        return struct.unpack(">q", self.call(INCR, [key, int64(delta)]).frames[0])[0]

    def cas(self, key, value, expected=None):
        if expected is None:
            return self.call(CAS, [key, value], ABSENT)
        return self.call(CAS, [key, value, expected])

    def dump(self, prefix=b""):
        frames = self.call(DUMP, [prefix]).frames
        return dict(zip(frames[0::2], frames[1::2]))

    def info(self):
        frames = self.call(INFO).frames
        return dict((name.decode(), int(value)) for name, value in
                    zip(frames[0::2], frames[1::2]))

    def since(self, prefix, seq, reset=False):
        """(reset, {key: value or None}, seq): one frame (or none) of
        operations encoded as TXN's, S key value and D key only (3.4)"""
        reply = self.call(SINCE, [prefix], RESET if reset else 0, seq)
        entries = {}
        for operation in decode_operations(reply.frames[0] if reply.frames else b""):
            if operation[0] not in ("S", "D"):
                raise ValueError("SINCE: operation %r" % operation[0])
            entries[operation[1]] = operation[2] if operation[0] == "S" else None
        return bool(reply.flags & RESET), entries, reply.seq

    def txn(self, operations):
        """operations: ("S", key, value), ("D", key), ("I", key, delta),
        ("R", key, value), ("A", key); the INCR results and the reply's seq"""
        reply = self.call(TXN, [encode_operations(operations)])
        results = reply.frames[0] if reply.frames else b""
        return [struct.unpack(">q", results[index:index + 8])[0]
                for index in range(0, len(results), 8)], reply.seq


def encode_operations(operations):
    """A TXN frame (3.3): per operation, its letter, the key's size (1
    byte), the key, then a value (4-byte big-endian size, bytes) for S and
    R, a delta (8 bytes) for I"""
    frame = b""
    for operation in operations:
        kind, key = operation[0], operation[1]
        frame += kind.encode() + bytes([len(key)]) + key
        if kind in ("S", "R"):
            frame += struct.pack(">I", len(operation[2])) + operation[2]
        elif kind == "I":
            frame += int64(operation[2])
    return frame


def decode_operations(frame):
    """The operations of a TXN-encoded frame, as encode_operations takes
    them; ValueError when it does not parse to its last byte"""
    operations, at = [], 0
    while at < len(frame):
        if len(frame) - at < 2:
            raise ValueError("truncated operation")
        kind, size = chr(frame[at]), frame[at + 1]
        key, at = frame[at + 2:at + 2 + size], at + 2 + size
        if size == 0 or len(key) != size:
            raise ValueError("bad key")
        if kind in ("S", "R"):
            (length,) = struct.unpack(">I", frame[at:at + 4])
            value, at = frame[at + 4:at + 4 + length], at + 4 + length
            if len(value) != length:
                raise ValueError("truncated value")
            operations.append((kind, key, value))
        elif kind == "I":
            (delta,) = struct.unpack(">q", frame[at:at + 8])
            operations.append((kind, key, delta))
            at += 8
        elif kind in ("D", "A"):
            operations.append((kind, key))
        else:
            raise ValueError("unknown operation %r" % kind)
    return operations


class Watch:
    """A stream of the changes under a prefix, on a socket of its own"""

    def __init__(self, endpoint, prefix=b"", credit=1024, baseline=0):
        self.store = Store(endpoint)
        self.store.call(WATCH, [prefix, struct.pack(">I", credit)], seq=baseline)

    def credit(self, count):
        self.store.send(CREDIT, seq=count)

    def next(self, timeout=5000):
        """("EVENT", key, value or None, seq, flags, request id), ("GAP",
        None, None, seq, flags, request id), or None"""
        if not self.store.socket.poll(timeout):
            return None
        reply = Reply(self.store.socket.recv_multipart())
        if reply.command == GAP:
            return ("GAP", None, None, reply.seq, reply.flags, reply.request_id)
        value = None if reply.flags & ABSENT else reply.frames[1]
        return ("EVENT", reply.frames[0], value, reply.seq, reply.flags, reply.request_id)

    def close(self):
        self.store.send(CANCEL)
        self.store.close()


def send_mail(directory, name, sender, frames):
    """A plain message into worker name's mailbox (section 5)"""
    socket = zmq.Context.instance().socket(zmq.PUSH)
    socket.linger = 2000
    socket.connect("ipc://%s/mbox-%s" % (directory, name))
    envelope = struct.pack(">BcBBI", 1, b"M", 0, 0, 0)
    socket.send_multipart([sender, envelope] + frames)
    socket.close()


#   ---------------------------------------------------------------------------
#   check: every command, and each rule of doc/PROTOCOL.md

def expect(condition, what):
    if not condition:
        print("not ok - %s" % what)
        sys.stdout.flush()
        sys.exit(1)
    print("ok - %s" % what)
    sys.stdout.flush()


def status_of(store, command, frames=(), flags=0, seq=None):
    reply = store.call(command, frames, flags, seq, ok=False)
    return STATUS[reply.status], reply


def check(endpoint, mailbox=None):
    store = Store(endpoint)
    other = Store(endpoint)

    #   HELLO is not required: a first request may be anything
    expect(store.exists(b"nothing") is False, "a first request needs no HELLO")
    seq = store.hello()
    expect(seq >= 0, "HELLO answers with the store's seq")

    #   Plain commands
    expect(store.set(b"k", b"v") == seq + 1, "SET: reply seq = its change's")
    expect(store.get(b"k") == b"v", "GET")
    expect(store.exists(b"k"), "EXISTS")
    expect(store.size() >= 1, "SIZE: 8 bytes")
    store.set(b"list/b", b"2")
    store.set(b"list/a", b"1")
    expect(store.keys(b"list/") == [b"list/a", b"list/b"], "KEYS: sorted bytewise")
    expect(status_of(store, KEYS)[0] == "OK", "KEYS: the prefix frame may be left out")
    expect(store.dump(b"list/") == {b"list/a": b"1", b"list/b": b"2"}, "DUMP: key, value pairs")
    store.delete(b"k")
    expect(status_of(store, DEL, [b"k"])[0] == "NOT_FOUND", "DEL of an absent key")

    #   Errors carry no frames
    status, reply = status_of(store, GET, [b"k"])
    expect(status == "NOT_FOUND" and reply.frames == [], "an error reply has no frames")

    #   Integers and doubles are decimal text
    expect(store.incr(b"n", 5) == 5, "INCR of an absent key counts from 0; 8-byte result")
    expect(store.get(b"n") == b"5", "INCR stores decimal text")
    expect(store.incr(b"n", -7) == -2, "INCR: the delta is 8 bytes, two's complement")
    store.set(b"n", b"+40")
    expect(store.incr(b"n", 2) == 42, "INCR parses a sign")
    for bad in (b"2.5", b" 5", b"5 ", b"0x10", b"", b"abc", b"9223372036854775808"):
        store.set(b"bad", bad)
        expect(status_of(store, INCR, [b"bad", int64(1)])[0] == "INVALID",
               "INCR of %r: INVALID" % bad)
    store.set(b"max", b"9223372036854775807")
    expect(status_of(store, INCR, [b"max", int64(1)])[0] == "INVALID", "INCR overflow: INVALID")
    expect(status_of(store, INCR, [b"n", b"\x01"])[0] == "PROTOCOL",
           "INCR with a delta that is not 8 bytes: PROTOCOL")

    #   CAS
    expect(status_of(store, CAS, [b"c", b"1"], ABSENT)[0] == "OK", "CAS ABSENT on an absent key")
    expect(status_of(store, CAS, [b"c", b"2"], ABSENT)[0] == "CONFLICT",
           "CAS ABSENT on a present key: CONFLICT")
    expect(status_of(store, CAS, [b"c", b"2", b"1"])[0] == "OK", "CAS with the expected value")
    expect(status_of(store, CAS, [b"c", b"3", b"1"])[0] == "CONFLICT", "CAS mismatch: CONFLICT")
    expect(status_of(store, CAS, [b"c", b"3"])[0] == "PROTOCOL",
           "CAS without ABSENT needs the expected frame: PROTOCOL")

    #   Malformed requests: which status, or none
    expect(status_of(store, 99)[0] == "PROTOCOL", "an unknown command: PROTOCOL")
    expect(status_of(store, EVENT)[0] == "PROTOCOL", "EVENT from a client: PROTOCOL")
    expect(status_of(store, GET, [b"k", b"extra"])[0] == "PROTOCOL", "an extra frame: PROTOCOL")
    expect(status_of(store, HELLO, [b"x"] * 6)[0] == "PROTOCOL",
           "more than four frames: PROTOCOL")
    expect(status_of(store, GET, [b""])[0] == "INVALID", "an empty key: INVALID")
    expect(status_of(store, GET, [b"a\x00b"])[0] == "INVALID", "a key holding a NUL: INVALID")
    expect(status_of(store, GET, [b"x" * 256])[0] == "INVALID", "a key of 256 bytes: INVALID")
    expect(status_of(store, GET, [b"x" * 255])[0] == "NOT_FOUND", "a key of 255 bytes is valid")
    expect(status_of(store, GET, [b"", b"extra"])[0] == "INVALID",
           "the key is checked before the frame count")
    expect(status_of(store, GET)[0] == "INVALID", "a missing key: INVALID")
    expect(status_of(store, KEYS, [b"p" * 256])[0] == "INVALID", "a prefix of 256 bytes: INVALID")
    expect(status_of(store, SET, [b"$x", b"v"])[0] == "DENIED", "SET of a reserved key: DENIED")
    expect(status_of(store, DEL, [b"$x"])[0] == "DENIED", "DEL of a reserved key: DENIED")
    expect(status_of(store, SET, [b"$x", b"v" * (16 * 1024 * 1024 + 1)])[0] == "DENIED",
           "a reserved key is checked before the value's size")
    expect(status_of(store, SET, [b"big", b"v" * (16 * 1024 * 1024 + 1)])[0] == "TOO_LARGE",
           "a value over 16 MiB: TOO_LARGE")
    expect(status_of(store, SET, [b"$notice/x", b"v"], NOTICE)[0] == "OK",
           "SET with NOTICE may write a reserved key (not authenticated)")
    for frames, what in (([b""], "an empty header frame"),
                         ([b"", encode(HELLO, 77)], "an empty delimiter before the header"),
                         ([encode(HELLO, 77)[:15]], "a header of 15 bytes"),
                         ([b"\x02" + encode(HELLO, 77)[1:]], "a header of version 2")):
        store.send_raw(frames)
        expect(store.receive(77, 300) is None, "%s: dropped, no reply" % what)
    expect(store.exists(b"list/a"), "the store serves on after a dropped message")

    #   Watchers
    baseline = store.hello()
    parked = store.send(WAIT_CHANGE, [b"w"], seq=baseline)
    expect(store.receive(parked, 200) is None, "WAIT_CHANGE parks")
    expect(store.get(b"list/a") == b"1", "a GET is answered while a WAIT_CHANGE is parked")
    changed = other.set(b"w", b"new")
    reply = store.receive(parked)
    expect(reply is not None and reply.frames == [b"new"] and reply.seq == changed,
           "WAIT_CHANGE: the value, reply seq = the change's")
    parked = store.send(WAIT_CHANGE, [b"w"], seq=changed)
    other.delete(b"w")
    expect(store.receive(parked).status == 1, "WAIT_CHANGE of a delete: NOT_FOUND")
    other.set(b"w", b"again")
    reply = store.call(WAIT_CHANGE, [b"w"], seq=0)
    expect(reply.frames == [b"again"], "WAIT_CHANGE with baseline 0: answered at once "
           "with the key's state, as the log holds no change before it")
    expect(status_of(store, WAIT_EQUAL, [b"w", b"again"])[0] == "OK",
           "WAIT_EQUAL answers at once when true")
    parked = store.send(WAIT_EQUAL, [b"w", b"later"])
    other.set(b"w", b"other")
    expect(store.receive(parked, 200) is None, "WAIT_EQUAL waits for its value")
    other.set(b"w", b"later")
    expect(store.receive(parked) is not None, "WAIT_EQUAL answered by its value")
    expect(status_of(store, WAIT_AVAILABLE, [b"w"])[0] == "OK", "WAIT_AVAILABLE at once")
    parked = store.send(WAIT_AVAILABLE, [b"soon"])
    other.set(b"soon", b"1")
    expect(store.receive(parked) is not None, "WAIT_AVAILABLE answered by a set")

    #   CANCEL withdraws a parked request quietly
    parked = store.send(WAIT_AVAILABLE, [b"never"])
    deadline = time.monotonic() + 10
    while other.info()["parked"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    expect(other.info()["parked"] >= 1, "INFO counts the parked request")
    store.send_raw([encode(CANCEL, parked)])   # CANCEL carries the parked request's id
    store.hello()                               # Handled in order: the CANCEL is in
    other.set(b"never", b"1")
    expect(store.receive(parked, 300) is None, "CANCEL: the withdrawn request gets no reply")
    expect(store.receive(parked, 10) is None and store.info()["parked"] == 0,
           "CANCEL has no reply and frees the request")

    #   Streams
    base = store.hello()
    watch = Watch(endpoint, b"s/", credit=2, baseline=base)
    for index in range(4):
        other.set(b"s/%d" % index, b"%d" % index)
    other.set(b"elsewhere", b"x")
    events = [watch.next(), watch.next()]
    expect(all(event and event[0] == "EVENT" for event in events)
           and [event[1] for event in events] == [b"s/0", b"s/1"],
           "WATCH: the credit frame (4 bytes, big-endian) lets 2 events through")
    expect(watch.next(300) is None, "no event beyond the credit")
    expect(all(event[5] == 0 for event in events), "EVENT messages carry request id 0")
    expect(events[1][3] == events[0][3] + 1, "EVENT seq = the change's")
    watch.credit(1)
    watch.credit(1)
    more = [watch.next(), watch.next()]
    expect([event[1] for event in more] == [b"s/2", b"s/3"], "CREDIT is additive")
    status, reply = status_of(watch.store, WATCH, [b"t/", struct.pack(">I", 10)])
    expect(status == "PROTOCOL", "a second WATCH on one socket: PROTOCOL")
    watch.credit(10)
    other.delete(b"s/0")
    event = watch.next()
    expect(event[0] == "EVENT" and event[2] is None and event[4] & ABSENT,
           "EVENT of a delete: ABSENT flag, no value frame")
    watch.close()

    #   A stream from baseline 0 on a log that no longer reaches seq 1: GAP
    for index in range(20):
        other.set(b"fill", b"%d" % index)
    watch = Watch(endpoint, b"", credit=100, baseline=0)
    first = watch.next()
    expect(first and first[0] == "GAP", "WATCH from baseline 0: GAP first when the log "
           "no longer holds seq 1")
    second = watch.next()
    expect(second and second[0] == "EVENT" and second[3] == first[3],
           "after GAP: the oldest change the log holds, its seq the GAP's")
    watch.close()

    #   TXN
    store.set(b"t/a", b"1")
    results, last = store.txn([("S", b"t/b", b"2"), ("I", b"t/a", 10), ("D", b"t/c"),
                               ("R", b"t/b", b"2"), ("A", b"t/c"), ("I", b"t/n", -1)])
    expect(results == [11, -1], "TXN: one 8-byte result per INCR, in order")
    expect(store.get(b"t/b") == b"2" and store.get(b"t/a") == b"11", "TXN applied")
    expect(last == store.hello(), "TXN: reply seq = its last change")
    status, reply = status_of(store, TXN, [b"R\x03t/b" + struct.pack(">I", 1) + b"9"
                                          + b"S\x03t/d" + struct.pack(">I", 1) + b"x"])
    expect(status == "CONFLICT" and not store.exists(b"t/d"),
           "TXN: a precondition fails, nothing applied")
    results, last = store.txn([("S", b"t/e", b"")])
    expect(results == [], "TXN without INCR: no result frame")
    expect(status_of(store, TXN, [b"Z\x01k"])[0] == "PROTOCOL", "TXN: an unknown operation")
    expect(status_of(store, TXN, [b"S\x01k\x00\x00\x00\x05ab"])[0] == "PROTOCOL",
           "TXN: a truncated value")

    #   SINCE
    base = store.hello()
    other.set(b"r/x", b"1")
    other.set(b"r/y", b"2")
    other.delete(b"r/x")
    reset, entries, seq = store.since(b"r/", base)
    expect(not reset and entries == {b"r/x": None, b"r/y": b"2"} and seq == store.hello(),
           "SINCE: each key changed since, with its value now (D: deleted)")
    reset, entries, seq = store.since(b"r/", 0, reset=True)
    expect(reset and entries == {b"r/y": b"2"}, "SINCE with RESET: every key")
    status, reply = status_of(store, SINCE, [b"nothing/"], seq=store.hello())
    expect(status == "OK" and reply.frames == [] and not reply.flags & RESET,
           "SINCE with nothing to say: no frame")
    reset, entries, seq = store.since(b"r/", 0)
    expect(reset, "SINCE from a seq the log no longer reaches: RESET")

    #   INFO
    info = store.info()
    names = ["keys", "bytes", "seq", "log", "log_bytes", "clients", "lanes", "streams",
             "parked", "rss", "pid"]
    expect(list(info)[:len(names)] == names, "INFO: the figures in their order")
    expect(info["seq"] == store.hello() and info["keys"] == store.size(),
           "INFO: seq and keys")
    expect(info["log"] <= 16, "the log holds at most ZPROC_LOG_CHANGES changes")

    #   The owner file
    if endpoint.startswith("ipc://"):
        directory = os.path.dirname(endpoint[len("ipc://"):])
        with open(os.path.join(directory, "owner")) as owner:
            expect(int(owner.read().strip()) == info["pid"],
                   "DIR/owner holds the pid of the store's process")
        #   Mailboxes: the sender's name is whatever the sender says
        if mailbox:
            send_mail(directory, mailbox, b"mallory", [b"hi"])
            reply = store.call(WAIT_EQUAL, [b"echo/last", b"mallory:hi"], timeout=10000)
            expect(reply.status == 0, "a mailbox takes a sender's name as given")

    #   SHUTDOWN: the context goes while a request is parked
    parked = store.send(WAIT_AVAILABLE, [b"shutdown/never"])
    store.hello()
    print("READY-FOR-SHUTDOWN")
    sys.stdout.flush()
    reply = store.receive(parked, 20000)
    expect(reply is not None and STATUS[reply.status] == "SHUTDOWN",
           "a parked request is answered SHUTDOWN when the context goes")
    other.close()
    store.close()


def main(argv):
    if len(argv) in (3, 4) and argv[1] == "check":
        check(argv[2], argv[3] if len(argv) == 4 else None)
        print("all checks passed")
        return 0
    sys.stderr.write("usage: zproc_client.py check ENDPOINT [MAILBOX]\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
