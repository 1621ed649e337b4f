#!/usr/bin/env python3
"""mkcases.py: makes each rule's fixture tree from base/proc (captured from this
machine's /proc by ../../hoststat/testdata/capture.sh), one second later, with the
numbers edited to show that case. Run from this directory; output is committed."""
import os, re, shutil

def tree(case):
    dst = os.path.join(case, "proc")
    shutil.rmtree(case, ignore_errors=True)
    shutil.copytree("base/proc", dst)
    return dst

def edit(root, path, fn):
    p = os.path.join(root, path)
    with open(p) as f:
        s = f.read()
    with open(p, "w") as f:
        f.write(fn(s))

def cpu(root, busy, idle):
    """advance the host's /proc/stat: busy ticks to user, idle ticks to idle (2 CPUs)."""
    def fn(s):
        out = []
        for line in s.splitlines():
            f = line.split()
            if f and re.fullmatch(r"cpu\d*", f[0]):
                div = 1 if f[0] == "cpu" else 2
                f[1] = str(int(f[1]) + busy // div)
                f[4] = str(int(f[4]) + idle // div)
                line = " ".join(f)
            out.append(line)
        return "\n".join(out) + "\n"
    edit(root, "stat", fn)

def proc_cpu(root, pid, ticks):
    def fn(s):
        f = s.split()
        f[13] = str(int(f[13]) + ticks)
        return " ".join(f) + "\n"
    edit(root, f"{pid}/stat", fn)

def netstat(root, **inc):
    def fn(s):
        lines = s.splitlines()
        for i in range(0, len(lines) - 1, 2):
            names, vals = lines[i].split(), lines[i + 1].split()
            if names[0] != "TcpExt:":
                continue
            for k, d in inc.items():
                j = names.index(k)
                vals[j] = str(int(vals[j]) + d)
            lines[i + 1] = " ".join(vals)
        return "\n".join(lines) + "\n"
    edit(root, "net/netstat", fn)

def write(root, path, text):
    with open(os.path.join(root, path), "w") as f:
        f.write(text)

def fds(root, pid, n):
    d = os.path.join(root, str(pid), "fd")
    shutil.rmtree(d)
    os.makedirs(d)
    for i in range(n):
        open(os.path.join(d, str(i)), "w").close()

def normal(root):
    """one quiet second: 20% of the host's CPUs busy."""
    cpu(root, 40, 160)
    proc_cpu(root, 4242, 10)
    proc_cpu(root, 4343, 20)

r = tree("healthy"); normal(r)

r = tree("fd-process"); normal(r)
edit(r, "4242/limits", lambda s: re.sub(r"Max open files\s+\d+\s+\d+", "Max open files            64                   64", s))
fds(r, 4242, 63)

r = tree("fd-system"); normal(r)
write(r, "sys/fs/file-nr", "2465900\t0\t2466160\n")

r = tree("listen-overflow"); normal(r)
netstat(r, ListenOverflows=57, ListenDrops=57)

r = tree("syn-backlog"); normal(r)
netstat(r, TCPReqQFullDoCookies=12, TCPReqQFullDrop=3)

r = tree("time-wait"); normal(r)
edit(r, "net/sockstat", lambda s: re.sub(r"tw \d+", "tw 20000", s))
netstat(r, TCPTimeWaitOverflow=5)

r = tree("ephemeral-ports"); normal(r)
edit(r, "net/sockstat", lambda s: re.sub(r"inuse 1 ", "inuse 900 ", re.sub(r"tw \d+", "tw 26000", s)))

r = tree("conntrack-full"); normal(r)
write(r, "sys/net/netfilter/nf_conntrack_count", "262100\n")

r = tree("cpu-saturation")
cpu(r, 196, 4); proc_cpu(r, 4242, 190); proc_cpu(r, 4343, 4)

r = tree("generator-saturated")
cpu(r, 196, 4); proc_cpu(r, 4242, 5); proc_cpu(r, 4343, 188)

r = tree("memory-pressure"); normal(r)
edit(r, "meminfo", lambda s: re.sub(r"MemAvailable:\s+\d+", "MemAvailable:     400000", s))
edit(r, "pressure/memory", lambda s: s.replace("full avg10=0.00 avg60=0.00 avg300=0.00 total=0", "full avg10=30.00 avg60=5.00 avg300=1.00 total=300000"))
