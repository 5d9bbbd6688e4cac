#!/usr/bin/env python3
"""A synthetic access-log writer for the LogFollower stress test (Python standard library only).

It appends numbered JSON lines, one write(2) per line like Caddy (a fraction of them in two
writes, to exercise the follower's carry-over), at a given rate, and rotates the file every
--rotate-every lines (with jitter) in one of three ways, picked at random:

  lumberjack    what Caddy does (caddy-facts §4d): close, rename to <stem>-<YYYY-MM-DDTHH-MM-SS.mmm><ext>,
                create a new file with O_TRUNC; a background thread gzips the backup after
                --gzip-delay-ms and deletes the uncompressed one, keeping --roll-keep .gz files.
  copytruncate  what logrotate's copytruncate does: copy the file to <name>.<n>, truncate it to 0
                and keep writing through the same O_APPEND descriptor. The copy is deleted after
                --copy-keep-ms.
  delete        unlink the file, then create it again.

Two deliberate departures from the real world, so that the test can demand zero loss:
  * copytruncate is atomic with respect to our writes: we are the only writer and do not write
    between the copy and the truncation. A real copytruncate loses what the application writes
    in that window, whatever the follower does.
  * --follower-pid: before any rotation, wait until that process holds the file open (found
    through /proc/<pid>/fd). A generation that is created and removed before a follower has even
    opened it cannot be followed by anyone; with Caddy's roll_size of at least 1 MiB that cannot
    happen in practice, but at hundreds of rotations per second (and with this writer's catch-up
    bursts, which can fill a generation in a fraction of a millisecond) it could. The follower
    must still read the old file's tail after the rotation, which is what the test checks.
  * With --follower-pid, a due copytruncate is postponed (the writer keeps writing, up to
    --max-postponed-lines lines, then waits) until the follower has read the file since it was
    created or last truncated: two separately observed
    inotify IN_ACCESS events on its inode (through ctypes), since the first one may be the
    follower's check of its old offset rather than a read of the new content. And the first line
    of every file is written whole. If a file is truncated before a follower has read a complete
    line of it, the follower cannot tell the truncation from growth when the new first line
    begins with the same bytes, nor the right copy from older ones: those lines are lost to every
    follower. The follower may still be behind by many lines at the truncation; it must then find
    the rest in the copy, which is what the test checks.
  Waits that time out are counted in the summary, and the test fails on them. Because of the
  cap, no generation holds more than 1.5 x --rotate-every + --max-postponed-lines lines, so the
  number of rotations has a floor whatever the machine's load: the summary gives it as
  "rotations_floor".

At the end it writes a JSON summary (--summary) with the counts, the elapsed time and every
rotation as [last sequence number before it, mode], for diagnosing a loss.
"""
import argparse
import ctypes
import gzip
import heapq
import json
import os
import random
import shutil
import struct
import sys
import threading
import time


class Background:
    """Runs delayed file jobs (gzip, delete) on one thread, like lumberjack's millRun goroutine."""

    def __init__(self):
        self._jobs = []
        self._counter = 0
        self._lock = threading.Condition()
        self._stopping = False
        self.errors = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def schedule(self, delay_s, job):
        with self._lock:
            self._counter += 1
            heapq.heappush(self._jobs, (time.monotonic() + delay_s, self._counter, job))
            self._lock.notify()

    def _run(self):
        while True:
            with self._lock:
                while True:
                    if not self._jobs and self._stopping:
                        return
                    now = time.monotonic()
                    if self._jobs and self._jobs[0][0] <= now:
                        _, _, job = heapq.heappop(self._jobs)
                        break
                    timeout = self._jobs[0][0] - now if self._jobs else None
                    self._lock.wait(timeout)
            try:
                job()
            except OSError as error:
                self.errors.append(str(error))

    def finish(self):
        with self._lock:
            self._stopping = True
            self._lock.notify()
        self._thread.join()


class AccessWatch:
    """Tells whether anyone read the current file since reset(), with inotify IN_ACCESS."""

    IN_ACCESS = 0x00000001
    EVENT = struct.Struct("iIII")  # struct inotify_event without the name

    def __init__(self):
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self._wd = -1
        self.reads = 0

    def watch(self, path):
        """Watches the inode now at `path` instead of the previous one."""
        if self._wd >= 0:
            self._libc.inotify_rm_watch(self._fd, self._wd)
        self._wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), self.IN_ACCESS)
        if self._wd < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch " + path)
        self.reset()

    def poll(self):
        """Returns how many times reads were observed since reset(). inotify merges identical
        events that have not been read yet, so each poll that finds any counts once."""
        seen = False
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            offset = 0
            while offset < len(data):
                wd, mask, _, length = self.EVENT.unpack_from(data, offset)
                offset += self.EVENT.size + length
                if wd == self._wd and mask & self.IN_ACCESS:
                    seen = True
        if seen:
            self.reads += 1
        return self.reads

    def reset(self):
        """Forgets reads so far, including our own (the copy reads the file)."""
        self.poll()
        self.reads = 0


def follower_holds(pid, device, inode):
    fd_dir = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return False
    for name in names:
        try:
            st = os.stat(os.path.join(fd_dir, name))
        except OSError:
            continue
        if st.st_ino == inode and st.st_dev == device:
            return True
    return False


class Writer:
    def __init__(self, args):
        self.args = args
        self.path = args.path
        directory, base = os.path.split(os.path.abspath(self.path))
        self.directory = directory
        stem, ext = os.path.splitext(base)
        self.stem, self.ext = stem, ext
        self.random = random.Random(args.seed)
        self.background = Background()
        self.rotations = {"lumberjack": 0, "copytruncate": 0, "delete": 0}
        self.handshake_wait_s = 0.0
        self.handshake_timeouts = 0
        self.copy_counter = 0
        self.last_stamp_ms = 0
        self.gzipped = []
        self.events = []  # [last seq written before the rotation, mode]
        self.fd = self._open(os.O_CREAT | os.O_APPEND)
        self.fresh = True  # the next line is the first of the file
        self.access = AccessWatch() if args.follower_pid else None
        if self.access:
            self.access.watch(self.path)

    def _open(self, extra):
        return os.open(self.path, os.O_WRONLY | os.O_CLOEXEC | extra, 0o644)

    def line(self, seq, generation):
        pad = "x" * self.random.randint(self.args.pad_min, self.args.pad_max)
        return f'{{"seq":{seq},"gen":{generation},"pad":"{pad}"}}\n'.encode()

    def write(self, data):
        while data:
            written = os.write(self.fd, data)
            data = data[written:]

    def wait_for_follower(self):
        if not self.args.follower_pid:
            return
        st = os.fstat(self.fd)
        started = time.monotonic()
        deadline = started + self.args.handshake_timeout
        while not follower_holds(self.args.follower_pid, st.st_dev, st.st_ino):
            if time.monotonic() >= deadline:
                self.handshake_timeouts += 1
                break
            time.sleep(0.0002)
        self.handshake_wait_s += time.monotonic() - started

    def follower_has_read(self, due_since):
        """For a due copytruncate: has the follower read the file (see the module comment)?"""
        if not self.access or self.access.poll() >= 2:
            return True
        if time.monotonic() - due_since >= self.args.handshake_timeout:
            self.handshake_timeouts += 1
            return True
        return False

    def new_file_created(self):
        self.fresh = True
        if self.access:
            self.access.watch(self.path)

    def backup_name(self):
        # lumberjack's names have millisecond resolution; several rotations in one millisecond
        # would collide, so the stamp is made strictly increasing.
        stamp_ms = max(int(time.time() * 1000), self.last_stamp_ms + 1)
        self.last_stamp_ms = stamp_ms
        seconds, millis = divmod(stamp_ms, 1000)
        stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime(seconds)) + f".{millis:03d}"
        return os.path.join(self.directory, f"{self.stem}-{stamp}{self.ext}")

    def compress(self, backup):
        with open(backup, "rb") as source, gzip.open(backup + ".gz", "wb", compresslevel=1) as target:
            shutil.copyfileobj(source, target)
        os.unlink(backup)
        self.gzipped.append(backup + ".gz")
        while len(self.gzipped) > self.args.roll_keep:
            os.unlink(self.gzipped.pop(0))

    def rotate(self, mode):
        self.wait_for_follower()
        if mode == "lumberjack":
            os.close(self.fd)
            backup = self.backup_name()
            os.rename(self.path, backup)
            self.fd = self._open(os.O_CREAT | os.O_TRUNC | os.O_APPEND)
            self.new_file_created()
            delay = self.random.uniform(0, self.args.gzip_delay_ms) / 1000.0
            self.background.schedule(delay, lambda: self.compress(backup))
        elif mode == "copytruncate":
            self.copy_counter += 1
            copy = f"{self.path}.{self.copy_counter}"
            shutil.copyfile(self.path, copy)
            os.ftruncate(self.fd, 0)
            self.fresh = True
            if self.access:
                self.access.reset()
            self.background.schedule(self.args.copy_keep_ms / 1000.0, lambda: os.unlink(copy))
        elif mode == "delete":
            os.close(self.fd)
            os.unlink(self.path)
            self.fd = self._open(os.O_CREAT | os.O_EXCL | os.O_APPEND)
            self.new_file_created()
        else:
            raise ValueError(mode)
        self.rotations[mode] += 1

    def run(self):
        args = self.args
        modes = args.modes.split(",")
        started = time.monotonic()
        generation = 0
        until_rotation = self.next_rotation()
        due_mode, due_since, postponed = None, 0.0, 0
        for seq in range(args.lines):
            due = started + seq / args.rate
            ahead = due - time.monotonic()
            if ahead > 0.001:
                time.sleep(ahead)
            data = self.line(seq, generation)
            split = self.random.random() < args.split_fraction
            if split and not self.fresh:
                cut = self.random.randint(1, len(data) - 1)
                self.write(data[:cut])
                self.write(data[cut:])
            else:
                self.write(data)
            self.fresh = False
            if seq == args.lines - 1:
                break
            if due_mode is None:
                until_rotation -= 1
                if until_rotation == 0:
                    due_mode, due_since = self.random.choice(modes), time.monotonic()
            ready = due_mode is not None and (due_mode != "copytruncate" or self.follower_has_read(due_since))
            while due_mode is not None and not ready and postponed >= args.max_postponed_lines:
                time.sleep(0.0002)
                ready = self.follower_has_read(due_since)
            if due_mode is not None and not ready:
                postponed += 1
            if ready:
                self.events.append([seq, due_mode])
                self.rotate(due_mode)
                generation += 1
                until_rotation = self.next_rotation()
                due_mode, postponed = None, 0
        elapsed = time.monotonic() - started
        os.close(self.fd)
        self.background.finish()
        return {
            "lines": args.lines,
            "rotations": self.rotations,
            "rotations_total": sum(self.rotations.values()),
            "rotations_floor": self.rotations_floor(),
            "elapsed_s": elapsed,
            "lines_per_s": args.lines / elapsed if elapsed > 0 else 0.0,
            "handshake_wait_s": self.handshake_wait_s,
            "handshake_timeouts": self.handshake_timeouts,
            "background_errors": self.background.errors,
            "events": self.events,
        }

    def rotations_floor(self):
        """The fewest rotations the run can make: every generation but the last is full."""
        every = self.args.rotate_every
        most_lines_per_file = max(1, every + every // 2) + self.args.max_postponed_lines + 1
        return max(0, self.args.lines // most_lines_per_file - 1)

    def next_rotation(self):
        every = self.args.rotate_every
        return max(1, self.random.randint(every // 2, every + every // 2))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--path", required=True)
    parser.add_argument("--lines", type=int, default=100000)
    parser.add_argument("--rate", type=float, default=10000.0, help="lines per second")
    parser.add_argument("--rotate-every", type=int, default=100, help="lines per file, on average")
    parser.add_argument("--modes", default="lumberjack,copytruncate,delete")
    parser.add_argument("--follower-pid", type=int, default=0)
    parser.add_argument("--handshake-timeout", type=float, default=5.0)
    parser.add_argument("--max-postponed-lines", type=int, default=60,
                        help="lines written while a due copytruncate waits for the follower, at most")
    parser.add_argument("--gzip-delay-ms", type=float, default=2.0)
    parser.add_argument("--copy-keep-ms", type=float, default=1000.0)
    parser.add_argument("--roll-keep", type=int, default=3)
    parser.add_argument("--split-fraction", type=float, default=0.05)
    parser.add_argument("--pad-min", type=int, default=10)
    parser.add_argument("--pad-max", type=int, default=120)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--summary", help="write the JSON summary here (default: stdout)")
    args = parser.parse_args(argv)

    summary = Writer(args).run()
    text = json.dumps(summary)
    if args.summary:
        temporary = args.summary + ".tmp"
        with open(temporary, "w") as out:
            out.write(text + "\n")
        os.rename(temporary, args.summary)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
