#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR MIT
"""The `parallax` CLI and the C stream examples as real processes: each command's text and
--json output parsed and checked against what the publishers and subscribers did, its errors
(no such stream: exit 1 naming the runtime directory; bad arguments: exit 2 with the usage), and
one publisher with three subscribers started in different orders, one killed with SIGKILL.

Run by ctest (tests/tools/CMakeLists.txt) with the paths of the binaries; standard library only.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

BIN = {}


def eventually(cond, timeout=10.0, step=0.05):
    """Polls cond() until it returns something true (returned) or the time is up (None)."""
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            return None
        time.sleep(step)


class StreamCase(unittest.TestCase):
    """Each test gets a private runtime directory, and its processes are reaped at the end."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="px-cli-test.")
        os.chmod(self.dir, 0o700)
        self.env = dict(os.environ, PARALLAX_RUNTIME_DIR=self.dir)
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            for f in (p.stdout, p.stderr):
                if f:
                    f.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, *argv):
        p = subprocess.Popen(argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        self.procs.append(p)
        return p

    def finish(self, p, timeout=60):
        """(exit status, stdout, stderr) of a started process."""
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out, err

    def cli(self, *args, timeout=60):
        r = subprocess.run([BIN["cli"], *args], env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        return r.returncode, r.stdout, r.stderr

    def cli_json(self, *args):
        rc, out, err = self.cli("--json", *args)
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def wait_listed(self, name):
        """Waits until `parallax list` shows stream `name` (its publisher has started)."""
        listed = eventually(lambda: name in [s["name"] for s in self.cli_json("list")["streams"]])
        self.assertTrue(listed, "stream %s never appeared" % name)

    def info(self, name):
        rc, out, _ = self.cli("--json", "info", name)
        return json.loads(out) if rc == 0 else None


class Usage(StreamCase):
    def test_help_and_version(self):
        rc, out, _ = self.cli("--help")
        self.assertEqual(rc, 0)
        for word in ("list", "info NAME", "hz NAME", "--json", "--window", "--count"):
            self.assertIn(word, out)
        rc, out, _ = self.cli("--version")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^parallax \d+\.\d+\.\d+ \(libparallax \d+\.\d+\.\d+\)$")

    def test_bad_arguments_exit_2_with_the_usage(self):
        cases = {
            (): "no command given",
            ("frobnicate",): 'unknown command "frobnicate"',
            ("list", "extra"): "list takes no operand",
            ("info",): "info needs a stream NAME",
            ("info", "a", "b"): "info takes one NAME, not 2",
            ("hz",): "hz needs a stream NAME",
            ("hz", "cam", "--count", "0"): '--count needs a positive whole number of frames, not "0"',
            ("hz", "cam", "--count", "-3"): "--count needs a positive whole number",
            ("hz", "cam", "--window", "soon"): '--window needs a positive number of seconds, not "soon"',
            ("hz", "cam", "--window=0"): "--window needs a positive number of seconds",
            ("hz", "cam", "--window"): "--window needs a value",
            ("list", "--window", "2"): "--window applies to hz only",
            ("list", "--verbose"): "unknown option --verbose",
        }
        for args, message in cases.items():
            with self.subTest(args=args):
                rc, out, err = self.cli(*args)
                self.assertEqual(rc, 2, err)
                self.assertEqual(out, "")
                self.assertIn("parallax: " + message, err)
                self.assertIn("usage: parallax", err)

    def test_a_malformed_name_is_a_bad_argument_naming_the_rule(self):
        for command in ("info", "hz"):
            rc, _, err = self.cli(command, "bad name")
            self.assertEqual(rc, 2, err)
            self.assertIn('name "bad name" has character 32', err)
            self.assertIn("PX_E_INVALID", err)


class NoSuchStream(StreamCase):
    def test_info_and_hz_exit_1_naming_the_runtime_dir(self):
        for args in (("info", "nope"), ("hz", "nope"), ("--json", "info", "nope"),
                     ("hz", "nope", "--count", "3")):
            with self.subTest(args=args):
                rc, out, err = self.cli(*args)
                self.assertEqual(rc, 1, err)
                self.assertEqual(out, "")
                self.assertIn('no live stream "nope" in the runtime directory ' + self.dir +
                              " (from $PARALLAX_RUNTIME_DIR)", err)

    def test_a_socket_path_is_named_as_such(self):
        path = os.path.join(self.dir, "elsewhere.sock")
        rc, _, err = self.cli("info", path)
        self.assertEqual(rc, 1, err)
        self.assertIn("no live stream at socket path " + path, err)

    def test_list_of_an_empty_dir(self):
        rc, out, _ = self.cli("list")
        self.assertEqual(rc, 0)
        self.assertEqual(out, "no live streams in %s (from $PARALLAX_RUNTIME_DIR)\n" % self.dir)
        self.assertEqual(self.cli_json("list"), {"runtime_dir": self.dir, "streams": []})

    def test_a_runtime_dir_that_does_not_exist_is_reported(self):
        self.env["PARALLAX_RUNTIME_DIR"] = os.path.join(self.dir, "missing")
        rc, _, err = self.cli("list")
        self.assertEqual(rc, 1)
        self.assertIn("missing", err)
        self.assertIn("does not exist", err)


class ListAndInfo(StreamCase):
    def test_list_and_info_show_the_subscribers(self):
        # A long stream at 50 Hz; one subscriber keeps its latest 3 frames, one releases each.
        pub = self.start(BIN["publisher"], "cam", "100000", "--bytes", "4096",
                         "--interval-ms", "20", "--subscribers", "2")
        holder = self.start(BIN["subscriber"], "cam", "100000", "--hold", "3")
        plain = self.start(BIN["subscriber"], "cam", "100000")
        # A second stream without subscribers, to see both listed.
        other = self.start(BIN["publisher"], "other", "100000", "--interval-ms", "50")

        def two_subscribers_and_frames():
            streams = {s["name"]: s for s in self.cli_json("list")["streams"]}
            return (streams if set(streams) == {"cam", "other"} and
                    streams["cam"]["subscribers"] == 2 and streams["cam"]["published"] > 5
                    else None)
        streams = eventually(two_subscribers_and_frames)
        self.assertIsNotNone(streams, self.cli("list"))
        self.assertEqual(streams["other"]["subscribers"], 0)
        self.assertEqual(streams["cam"]["dropped"], 0)

        rc, out, _ = self.cli("list")
        self.assertEqual(rc, 0)
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "SUBSCRIBERS", "PUBLISHED", "DROPPED"])
        self.assertEqual([line.split()[:2] for line in lines[1:]], [["cam", "2"], ["other", "0"]])

        # info: the subscribers by pid. The page is as of the last publish, when the frame just
        # sent is still queued: the holder has 3 frames and that one in flight, the other 1.
        def holder_holds_three():
            i = self.info("cam")
            rows = {s["pid"]: s for s in i["subscribers"]} if i else {}
            return i if (set(rows) == {holder.pid, plain.pid} and
                         rows[holder.pid]["in_flight"] in (3, 4) and
                         rows[plain.pid]["in_flight"] in (0, 1)) else None
        info = eventually(holder_holds_three)
        self.assertIsNotNone(info, self.info("cam"))
        self.assertEqual(info["stream"], "cam")
        self.assertEqual(info["stats"]["subscribers"], 2)
        self.assertEqual(info["stats"]["joined"], 2)
        for row in info["subscribers"]:
            self.assertGreater(row["delivered"], 0)
            self.assertEqual(row["dropped"], 0)
            self.assertLessEqual(row["delivered"], info["stats"]["published"])

        rc, out, _ = self.cli("info", "cam")
        self.assertEqual(rc, 0)
        self.assertTrue(out.startswith("stream cam\n"), out)
        self.assertRegex(out, r"subscribers 2 \(joined 2, departed 0\)")
        table = out.splitlines()[2:]
        self.assertEqual(table[0].split(), ["PID", "IN_FLIGHT", "DELIVERED", "DROPPED"])
        self.assertEqual(sorted(int(line.split()[0]) for line in table[1:]),
                         sorted([holder.pid, plain.pid]))
        rc, out, _ = self.cli("info", "other")
        self.assertIn("no subscribers", out)

        # Stopped with SIGTERM, the publisher ends cleanly and gets every slot back.
        for p in (pub, other):
            p.send_signal(signal.SIGTERM)
        for p in (pub, other):
            rc, out, err = self.finish(p)
            self.assertEqual(rc, 0, err)
            self.assertRegex(out, r"all \d+ slots back")
        for s in (holder, plain):
            rc, out, err = self.finish(s)
            self.assertEqual(rc, 0, err)
            self.assertIn("damaged 0", out)
        self.assertEqual(self.cli_json("list")["streams"], [])


class Hz(StreamCase):
    def gap_publisher(self, mode):
        p = self.start(BIN["gap_publisher"], "cam", mode)
        self.wait_listed("cam")
        return p

    def test_hz_counts_frames_sizes_and_skipped_sequence_numbers(self):
        pub = self.gap_publisher("skip")
        hz = self.start(BIN["cli"], "--json", "hz", "cam")
        rc, out, err = self.finish(hz)
        self.assertEqual(rc, 0, err)
        lines = [json.loads(line) for line in out.splitlines()]
        windows, summary = lines[:-1], lines[-1]
        # 100 frames 20 ms apart: at least two whole seconds, so at least two window lines.
        self.assertGreaterEqual(len(windows), 2, out)
        for w in windows:
            self.assertFalse(w["summary"])
            self.assertEqual(w["stream"], "cam")
            self.assertAlmostEqual(w["span_s"], 1.0, places=6)
            self.assertGreater(w["frames"], 10)
            self.assertAlmostEqual(w["rate_hz"], w["frames"] / w["span_s"], places=3)
            self.assertEqual((w["bytes_min"], w["bytes_max"]), (1000, 3000))
            self.assertEqual(w["missed"], 0)
        self.assertTrue(summary["summary"])
        self.assertEqual(summary["end"], "closed")
        self.assertEqual(summary["frames"], 100)
        self.assertEqual(summary["seq_skipped"], 9)
        self.assertEqual(summary["missed"], 0)
        self.assertEqual((summary["bytes_min"], summary["bytes_max"]), (1000, 3000))
        self.assertEqual(summary["bytes_mean"], 2000)
        self.assertEqual(sum(w["seq_skipped"] for w in windows) <= 9, True)
        rc, out, err = self.finish(pub)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.strip(), "published 100 dropped 0 skipped 9")

    def test_hz_text_lines_and_count(self):
        pub = self.gap_publisher("skip")
        hz = self.start(BIN["cli"], "hz", "cam", "--count", "30")
        rc, out, err = self.finish(hz)
        self.assertEqual(rc, 0, err)
        # 30 frames 20 ms apart end within the first second: the summary line alone.
        self.assertRegex(out, r"^cam: total: [0-9.]+ Hz, 30 frames in [0-9.]+ s, 2000 B mean "
                              r"\(min 1000, max 3000\), missed 0, seq skipped 2 \(count\)\n$")
        pub.kill()

    def test_hz_missed_matches_what_the_publisher_dropped(self):
        pub = self.gap_publisher("burst")
        hz = self.start(BIN["cli"], "--json", "hz", "cam")
        rc, out, err = self.finish(hz)
        self.assertEqual(rc, 0, err)
        summary = json.loads(out.splitlines()[-1])
        rc, pout, perr = self.finish(pub)
        self.assertEqual(rc, 0, perr)
        published, dropped = map(int, re.match(r"published (\d+) dropped (\d+)", pout).groups())
        self.assertEqual(published, 2001)
        self.assertGreater(dropped, 0, "a burst with credit for one frame drops some")
        self.assertEqual(summary["missed"], dropped)
        self.assertEqual(summary["frames"] + summary["missed"], published)
        self.assertEqual(summary["seq_skipped"], dropped)  # its numbering is the stream's here

    def test_ctrl_c_prints_the_summary(self):
        pub = self.start(BIN["publisher"], "cam", "100000", "--bytes", "512",
                         "--interval-ms", "5")
        self.wait_listed("cam")
        hz = self.start(BIN["cli"], "--json", "hz", "cam")
        first = hz.stdout.readline()  # a line a second: it is running
        self.assertFalse(json.loads(first)["summary"])
        hz.send_signal(signal.SIGINT)
        rc, out, err = self.finish(hz)
        self.assertEqual(rc, 0, err)
        summary = json.loads(out.splitlines()[-1])
        self.assertEqual(summary["end"], "interrupted")
        self.assertGreater(summary["frames"], 0)
        self.assertEqual(summary["bytes_max"], 512)
        pub.send_signal(signal.SIGTERM)
        self.assertEqual(self.finish(pub)[0], 0)


class Examples(StreamCase):
    """One publisher, three subscribers started in different orders, one killed mid-stream."""
    FRAMES = 300

    def run_order(self, order, victim):
        subs, pub = [], None
        for who in order:
            if who == "pub":
                pub = self.start(BIN["publisher"], "cam", str(self.FRAMES), "--interval-ms",
                                 "5", "--subscribers", "3")
            else:
                subs.append(self.start(BIN["subscriber"], "cam", str(self.FRAMES)))
            time.sleep(0.1)
        killed = subs[victim]
        # Mid-stream: once the publisher has published some frames to all three.
        mid = eventually(lambda: (self.info("cam") or {}).get("stats", {}).get("published", 0)
                         >= 50)
        self.assertTrue(mid, "the publisher never got going")
        killed.send_signal(signal.SIGKILL)
        rc, _, _ = self.finish(killed)
        self.assertEqual(rc, -signal.SIGKILL)
        # The publisher notices the departure; the table loses the dead pid.
        gone = eventually(lambda: (lambda i: i and killed.pid not in
                                   [s["pid"] for s in i["subscribers"]])(self.info("cam")))
        self.assertTrue(gone or pub.poll() is not None)
        for s in subs:
            if s is killed:
                continue
            rc, out, err = self.finish(s)
            self.assertEqual(rc, 0, err)
            self.assertIn("received %d frames (0..%d), missed 0, damaged 0" %
                          (self.FRAMES, self.FRAMES - 1), out)
        rc, out, err = self.finish(pub)
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(out, r"published %d frames of 65536 bytes" % self.FRAMES)
        self.assertRegex(out, r"joined 3, departed [1-3]\)")
        self.assertRegex(out, r"all \d+ slots back")

    def test_subscriber_first_then_publisher_then_two(self):
        self.run_order(["sub", "pub", "sub", "sub"], victim=1)

    def test_publisher_first(self):
        self.run_order(["pub", "sub", "sub", "sub"], victim=0)

    def test_subscribers_first(self):
        self.run_order(["sub", "sub", "sub", "pub"], victim=2)


def main():
    parser = argparse.ArgumentParser()
    for name in ("cli", "publisher", "subscriber", "gap-publisher"):
        parser.add_argument("--" + name, required=True)
    args, rest = parser.parse_known_args()
    BIN.update(cli=args.cli, publisher=args.publisher, subscriber=args.subscriber,
               gap_publisher=args.gap_publisher)
    unittest.main(argv=[sys.argv[0], "-v", *rest])


if __name__ == "__main__":
    main()
