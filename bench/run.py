"""`make bench`: libcvis against PyTorch on this machine, side by side.

    /usr/bin/python3 bench/run.py [--quick] [--out bench/results.json]

Two long-lived processes, build/bench/bench (C, libcvis) and
bench/torch_ref.py (PyTorch CPU), answer one timed call per command; every
row warms both up (two calls each; one for SmoothGrad, none for Score-CAM
and activation maximization), then alternates them (libcvis, torch,
libcvis, ...), so that a machine whose load changes during the run slows
both alike.  Each row reports the median and the spread (lowest to
highest) of each side and ratio = torch median / libcvis median (above 1:
libcvis is faster).  Both sides run with the same thread count, set
explicitly.  Big rows get fewer repetitions (the count is in the table);
the whole run took 6 to 7 minutes on the 2-core machine at load 1.

Writes a table on stdout, bench/results.json, bench/results.md (the
README's table) and bench/results.png.  This
process removes OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from its children's
environment (they can pin an older kernel); tests never do."""
import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "bench")
MODELS = os.path.join(BUILD, "models")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
ENV = {k: v for k, v in os.environ.items()
       if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}


class Side:
    """A child process answering "ok VALUE" or "error MESSAGE" per line."""

    def __init__(self, name, argv):
        self.name = name
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=ENV, cwd=ROOT)

    def ask(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if not answer.startswith("ok"):
            raise RuntimeError("%s: %s -> %s" % (self.name, line, answer or "no answer"))
        return float(answer.split()[1])

    def rss_reset(self):
        """Starts a new peak-RSS window (Linux: 5 > clear_refs); returns the
        current RSS in MiB, or None where that is not possible."""
        try:
            with open("/proc/%d/clear_refs" % self.proc.pid, "w") as f:
                f.write("5")
            return self.status("VmRSS")
        except OSError:
            return None

    def status(self, key):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
        return None

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.wait(timeout=60)


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(v) for v in f.read().split()[:3]]


def summary(times):
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "n": len(times), "all": times}


def timed_pair(c, t, cmd, budget, max_reps=9, warm=2):
    """`warm` warm-up calls per side, then alternate the two sides; the
    repetitions are chosen from the last warm-up's time so that the row
    takes about `budget` seconds.  Two warm-ups: a new libcvis explainer's
    first call allocates and first touches its buffers, and its second
    still ran 10 to 25% slower than the later ones here; torch's caching
    allocator is warm from the earlier rows."""
    sides = [("libcvis", c), ("torch", t)]
    last = {}
    if warm:
        for name, s in sides:
            for _ in range(warm):
                last[name] = s.ask(cmd)
        per = max(last.values())
        reps = max(1, min(max_reps, int(budget / (2 * per))))
    else:
        reps = 1
    times = {"libcvis": [], "torch": []}
    for i in range(reps):
        order = sides if i % 2 == 0 else sides[::-1]
        for name, s in order:
            times[name].append(s.ask(cmd))
    row = {"libcvis": summary(times["libcvis"]), "torch": summary(times["torch"])}
    row["ratio"] = row["torch"]["median"] / row["libcvis"]["median"]
    return row


def method_memory(kind, c_argv, t_argv):
    """Peak memory of one method call in a fresh process that has loaded
    resnet18 and nothing else (so that no earlier row's freed memory hides
    the method's own): VmHWM after the call minus VmRSS before it, MiB."""
    out = {}
    for name, argv, model in (("libcvis", c_argv, os.path.join(MODELS, "resnet18.onnx")),
                              ("torch", t_argv, "resnet18")):
        s = Side(name, argv)
        try:
            s.ask("load resnet18 " + model)
            s.ask("threads 1")
            base = s.rss_reset()
            s.ask("run resnet18 %s 3 224 224" % kind)
            peak = s.status("VmHWM")
            out[name] = {"extra_mib": peak - base, "peak_mib": peak}
        finally:
            s.close()
    return out


def fmt_time(s):
    return "%.1f ms" % (s * 1e3) if s < 1 else "%.2f s" % s


def spread(s):
    m = s["median"]
    return "%3.0f%%" % (100 * (s["max"] - s["min"]) / m) if s["n"] > 1 else "  - "


def print_row(label, row):
    line = "%-38s %10s %5s %10s %5s %3d %6.2f" % (
        label, fmt_time(row["libcvis"]["median"]), spread(row["libcvis"]),
        fmt_time(row["torch"]["median"]), spread(row["torch"]), row["libcvis"]["n"],
        row["ratio"])
    print(line, flush=True)


def header(title):
    print("\n## " + title, flush=True)
    print("%-38s %10s %5s %10s %5s %3s %6s" % ("row", "libcvis", "sprd", "torch", "sprd",
                                               "n", "ratio"), flush=True)


def time_v(argv):
    """Wall seconds and peak RSS (MiB) of a whole process (/usr/bin/time -v)."""
    r = subprocess.run(["/usr/bin/time", "-v"] + argv, env=ENV, cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed: %s" % (argv[0], r.stderr[-500:]))
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", r.stderr)
    h, m, s = wall.groups()
    seconds = int(h or 0) * 3600 + int(m) * 60 + float(s)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    return seconds, rss / 1024.0


def markdown(res):
    """The results as the README's Performance table (measured values only)."""
    out = ["| row | libcvis | torch | ratio torch/libcvis | n |", "|---|---:|---:|---:|---:|"]
    for r in res["rows"]:
        out.append("| %s | %s | %s | %.2f | %d |" % (
            r["label"], fmt_time(r["libcvis"]["median"]), fmt_time(r["torch"]["median"]),
            r["ratio"], r["libcvis"]["n"]))
    lines = ["\n".join(out), ""]
    e = res.get("efficiency")
    if e:
        lines.append("- resnet18 batch %d forward, 1 thread: %.1f GFLOP of convolutions at %.1f "
                     "GFLOP/s (torch %.1f), %.0f%% of this machine's sgemm (%.1f GFLOP/s); the "
                     "time includes the other layers, and the operations are counted as a "
                     "direct convolution does them (Winograd layers do fewer)." % (
                         e["batch"], e["conv_gflop"], e["libcvis_gflops_whole_forward"],
                         e["torch_gflops_whole_forward"], 100 * e["fraction_of_sgemm"],
                         e["sgemm_gflops_1thread"]))
    th = res.get("threads")
    if th:
        lines.append("- 2 threads against 1: sgemm x%.2f; resnet18 forward + input gradient at "
                     "batch %d: libcvis x%.2f, torch x%.2f%s." % (
                         th["sgemm_speedup"], e["batch"] if e else 32,
                         th["resnet18_fwdgrad_speedup"]["libcvis"],
                         th["resnet18_fwdgrad_speedup"]["torch"],
                         "" if th["second_core_available"] else
                         " (sgemm itself scaled below 1.9: the second core was busy)"))
    for kind, m in res.get("memory", {}).items():
        lines.append("- extra peak RSS of one %s call (fresh process, resnet18, batch 3): "
                     "libcvis %.0f MiB, torch %.0f MiB." % (
                         "Score-CAM (2 batches of 32 per image)" if kind == "scorecam64"
                         else kind, m["libcvis"]["extra_mib"], m["torch"]["extra_mib"]))
    st = [r for r in res["rows"] if r.get("section") == "startup"]
    if st:
        lines.append("- start-up peak RSS: libcvis %.0f MiB, torch %.0f MiB." % (
            st[0]["peak_rss_mib"]["libcvis"], st[0]["peak_rss_mib"]["torch"]))
    sc = res.get("scaling")
    if sc:
        lines.append("- scaling, libcvis resnet18 forward + input gradient, 2 threads, per image: " +
                     ", ".join("b%d %s" % (x["batch"], fmt_time(x["seconds"] / x["batch"]))
                               for x in sc["batch"]) +
                     "; per 224x224 of pixels at batch 4: " +
                     ", ".join("%d %s" % (x["size"], fmt_time(x["seconds"] * 224 * 224 /
                                                               (x["size"] ** 2)))
                               for x in sc["size"]) + ".")
    lines.append("- machine: %s, %d cores; load average %s at the start, %s at the end; "
                 "%.0f s in all." % (res["machine"]["cpu"], res["machine"]["cores"],
                                     res["loadavg"]["start"], res["loadavg"]["end"],
                                     res["seconds"]))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true",
                    help="batch 1 and 8 only, fewer method rows (a smoke run)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results.json"))
    ap.add_argument("--chart", default=os.path.join(ROOT, "bench", "results.png"))
    args = ap.parse_args()
    start = time.time()
    os.makedirs(MODELS, exist_ok=True)
    subprocess.run([PY, os.path.join(ROOT, "bench", "torch_ref.py"), "export", MODELS],
                   check=True, env=ENV, cwd=ROOT)

    res = {"machine": {}, "rows": [], "loadavg": {"start": loadavg()}}
    try:
        cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = re.search(r"Model name:\s*(.*)", cpu)
        res["machine"]["cpu"] = model.group(1).strip() if model else platform.processor()
    except OSError:
        res["machine"]["cpu"] = platform.processor()
    res["machine"]["cores"] = os.cpu_count()
    res["machine"]["torch_version"] = subprocess.run(
        [PY, "-c", "import torch; print(torch.__version__)"], capture_output=True,
        text=True, env=ENV).stdout.strip()
    print("machine: %s, %d cores; load average %s" % (
        res["machine"]["cpu"], res["machine"]["cores"], res["loadavg"]["start"]), flush=True)

    # the pictures: libcvis's side makes each shape's input first and saves
    # it here; torch's side reads it (both explain the same images)
    inputs = os.path.join(BUILD, "inputs")
    shutil.rmtree(inputs, ignore_errors=True)
    os.makedirs(inputs)
    ENV["BENCH_INPUT_DIR"] = inputs
    c = Side("libcvis", [os.path.join(BUILD, "bench")])
    t = Side("torch", [PY, os.path.join(ROOT, "bench", "torch_ref.py"), "serve"])
    chart_rows = []
    try:
        for name, path in (("tutorial", "tutorial"),
                           ("resnet18", os.path.join(MODELS, "resnet18.onnx")),
                           ("resnet18_dyn", os.path.join(MODELS, "resnet18_dyn.onnx")),
                           ("vgg11", os.path.join(MODELS, "vgg11.onnx"))):
            c.ask("load %s %s" % (name, path))
            t.ask("load %s %s" % (name, name.replace("_dyn", "")))

        def add(section, label, row, **extra):
            row.update(section=section, label=label, **extra)
            res["rows"].append(row)
            print_row(label, row)
            return row

        def threads(n):
            c.ask("threads %d" % n)
            t.ask("threads %d" % n)

        # 4 (first, on a quiet start): the machine's sgemm ceiling
        header("sgemm 2048^3 (this machine's ceiling)")
        sgemm = {}
        for n_thr in (1, 2):
            threads(n_thr)
            row = timed_pair(c, t, "sgemm 2048", 3, max_reps=5)
            flops = 2.0 * 2048 ** 3
            sgemm[n_thr] = flops / row["libcvis"]["median"] / 1e9
            add("sgemm", "sgemm 2048 %dT (GFLOP/s %.0f / %.0f)" % (
                n_thr, sgemm[n_thr], flops / row["torch"]["median"] / 1e9), row,
                threads=n_thr, gflops=sgemm[n_thr])

        # 1: forward and forward + input gradient
        header("forward / forward + input gradient")
        sizes = {"tutorial": 128, "resnet18": 224, "vgg11": 224}
        batches = {"tutorial": (1, 8, 32), "resnet18": (1, 8, 32), "vgg11": (1, 8)}
        if args.quick:
            batches = {k: (1, 8) for k in batches}
        for n_thr in (1, 2):
            threads(n_thr)
            for name in ("tutorial", "resnet18", "vgg11"):
                for b in batches[name]:
                    for kind in ("fwd", "fwdgrad"):
                        hw = sizes[name]
                        row = timed_pair(c, t, "run %s %s %d %d %d" % (name, kind, b, hw, hw),
                                         4 if b < 32 else 6)
                        label = "%s %s b%d %dT" % (name, kind, b, n_thr)
                        add("forward", label, row, model=name, kind=kind, batch=b,
                            threads=n_thr)
                        if n_thr == 1:
                            chart_rows.append((row["ratio"], label))

        # 4: efficiency of resnet18's convolutions at batch 32, 1 thread
        eff_b = 8 if args.quick else 32
        flops = c.ask("convflops resnet18 %d 224 224" % eff_b)
        fwd1 = [r for r in res["rows"] if r.get("model") == "resnet18" and r["kind"] == "fwd"
                and r["batch"] == eff_b and r["threads"] == 1][0]
        conv_gflops = flops / fwd1["libcvis"]["median"] / 1e9
        res["efficiency"] = {
            "batch": eff_b, "conv_gflop": flops / 1e9,
            "libcvis_gflops_whole_forward": conv_gflops,
            "torch_gflops_whole_forward": flops / fwd1["torch"]["median"] / 1e9,
            "sgemm_gflops_1thread": sgemm[1], "fraction_of_sgemm": conv_gflops / sgemm[1]}
        print("\nresnet18 b%d forward, 1 thread: %.1f GFLOP of convolutions in %s = %.1f GFLOP/s "
              "(%.0f%% of sgemm's %.1f; the time includes every other layer too; operations "
              "counted as a direct convolution does them, Winograd layers do fewer)" % (
                  eff_b, flops / 1e9, fmt_time(fwd1["libcvis"]["median"]), conv_gflops,
                  100 * conv_gflops / sgemm[1], sgemm[1]), flush=True)

        # threads: 2 against 1
        def speedup(model, kind, b):
            rs = {r["threads"]: r for r in res["rows"] if r.get("model") == model and
                  r.get("kind") == kind and r.get("batch") == b}
            return {side: rs[1][side]["median"] / rs[2][side]["median"]
                    for side in ("libcvis", "torch")}
        sg = sgemm[1] and sgemm[2] / sgemm[1]
        sp = speedup("resnet18", "fwdgrad", eff_b)
        res["threads"] = {"sgemm_speedup": sg, "resnet18_fwdgrad_speedup": sp,
                          "second_core_available": sg >= 1.9}
        print("2 threads against 1: sgemm x%.2f, resnet18 fwdgrad b%d libcvis x%.2f, torch x%.2f%s"
              % (sg, eff_b, sp["libcvis"], sp["torch"],
                 "" if sg >= 1.9 else "  (sgemm scaled below 1.9: the second core was busy)"),
              flush=True)

        # 2: whole methods, resnet18, batch 3, 1 thread
        header("methods on resnet18, batch 3, 1 thread")
        threads(1)
        methods = ["saliency", "smoothgrad", "gradcam", "gradcam++", "fasterscorecam",
                   "scorecam", "actmax"]
        if args.quick:
            methods = methods[:5]
        for kind in methods:
            # Score-CAM and activation maximization run once, cold (each
            # takes 20 to 100 s a side; their first-call costs are a few
            # hundred ms); SmoothGrad (4 s a side) after one warm-up
            warm = {"scorecam": 0, "actmax": 0, "smoothgrad": 1}.get(kind, 2)
            row = timed_pair(c, t, "run resnet18 %s 3 224 224" % kind, 4, warm=warm)
            label = "resnet18 %s b3 1T" % kind
            add("methods", label, row, model="resnet18", kind=kind, batch=3, threads=1)
            chart_rows.append((row["ratio"], label))

        # 5: scaling of libcvis's resnet18 forward + input gradient, 2 threads
        header("scaling, libcvis resnet18 fwdgrad, 2 threads (time per image)")
        threads(2)
        scaling = {"batch": [], "size": []}
        for b in ((1, 2, 4, 8) if args.quick else (1, 2, 4, 8, 16, 32, 64)):
            c.ask("run resnet18_dyn fwdgrad %d 224 224" % b)  # warm-up of this shape
            s = c.ask("run resnet18_dyn fwdgrad %d 224 224" % b)
            scaling["batch"].append({"batch": b, "seconds": s})
            print("batch %3d  224x224  %10s  %8s/image" % (b, fmt_time(s), fmt_time(s / b)),
                  flush=True)
        for hw in (112, 160, 224, 320, 448):
            c.ask("run resnet18_dyn fwdgrad 4 %d %d" % (hw, hw))
            s = c.ask("run resnet18_dyn fwdgrad 4 %d %d" % (hw, hw))
            scaling["size"].append({"size": hw, "seconds": s})
            print("batch   4  %dx%d  %10s  %8s per 224^2 of pixels" % (
                hw, hw, fmt_time(s), fmt_time(s * 224 * 224 / (hw * hw))), flush=True)
        res["scaling"] = scaling
    finally:
        c.close()
        t.close()

    # peak memory of the methods where users wait longest
    print("\n## extra peak RSS of one call, fresh processes, resnet18 batch 3 (MiB)", flush=True)
    res["memory"] = {}
    for kind in ("smoothgrad", "scorecam64"):
        mem = method_memory(kind, [os.path.join(BUILD, "bench")],
                            [PY, os.path.join(ROOT, "bench", "torch_ref.py"), "serve"])
        res["memory"][kind] = mem
        print("%-38s libcvis +%.0f MiB (peak %.0f)   torch +%.0f MiB (peak %.0f)" % (
            kind + (" (Score-CAM, 2 batches of 32 per image)" if kind == "scorecam64" else ""),
            mem["libcvis"]["extra_mib"], mem["libcvis"]["peak_mib"],
            mem["torch"]["extra_mib"], mem["torch"]["peak_mib"]), flush=True)

    # 3: start-up, whole processes, 1 thread each side
    header("start-up: load resnet18, Grad-CAM on one image, exit (wall; peak RSS)")
    tmp = tempfile.mkdtemp(prefix="cvis_bench_")
    try:
        img = os.path.join(tmp, "picture.png")
        c = Side("libcvis", [os.path.join(BUILD, "bench")])
        c.ask("png " + img)
        c.close()
        cvis_cmd = [os.path.join(ROOT, "build", "bin", "cvis"), "explain",
                    os.path.join(MODELS, "resnet18.onnx"), img, "--method", "gradcam",
                    "--imagenet", "-o", os.path.join(tmp, "out"), "--quiet"]
        torch_cmd = [PY, os.path.join(ROOT, "bench", "torch_ref.py"), "startup", MODELS, img]
        ENV["OMP_NUM_THREADS"] = ENV["OPENBLAS_NUM_THREADS"] = "1"
        runs = {"libcvis": [], "torch": []}
        for i in range(3):
            runs["libcvis"].append(time_v(cvis_cmd))
            runs["torch"].append(time_v(torch_cmd))
        row = {"libcvis": summary([r[0] for r in runs["libcvis"]]),
               "torch": summary([r[0] for r in runs["torch"]]),
               "peak_rss_mib": {k: max(r[1] for r in v) for k, v in runs.items()}}
        row["ratio"] = row["torch"]["median"] / row["libcvis"]["median"]
        row["rss_ratio"] = row["peak_rss_mib"]["libcvis"] / row["peak_rss_mib"]["torch"]
        row.update(section="startup", label="start-up resnet18 gradcam 1T")
        res["rows"].append(row)
        print_row(row["label"], row)
        print("peak RSS: libcvis %.0f MiB, torch %.0f MiB (%.2f of torch's)" % (
            row["peak_rss_mib"]["libcvis"], row["peak_rss_mib"]["torch"], row["rss_ratio"]))
        chart_rows.append((row["ratio"], row["label"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    res["loadavg"]["end"] = loadavg()
    res["seconds"] = time.time() - start
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    md = os.path.splitext(args.out)[0] + ".md"
    with open(md, "w") as f:
        f.write(markdown(res))
    c = Side("libcvis", [os.path.join(BUILD, "bench")])
    c.proc.stdin.write("chart %s %d\n" % (args.chart, len(chart_rows)))
    for ratio, label in chart_rows:
        c.proc.stdin.write("%.4f %s\n" % (ratio, label))
    c.proc.stdin.flush()
    answer = c.proc.stdout.readline()
    c.close()
    print("\nload average: start %s, end %s; %.0f s in all; wrote %s and %s (%s)" % (
        res["loadavg"]["start"], res["loadavg"]["end"], res["seconds"], args.out, args.chart,
        answer.strip()))


if __name__ == "__main__":
    main()
