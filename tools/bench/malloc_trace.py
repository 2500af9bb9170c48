#!/usr/bin/env python3
"""Prints the stacks tools/bench/malloc_trace.c recorded, largest count first, symbolized.
usage: malloc_trace.py [TRACE_FILE [N_STACKS]]  (frames in the aiotd binary through addr2line and
`swift demangle`; frames in shared libraries as object + offset)."""
import subprocess
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/malloc_trace.txt"
top = int(sys.argv[2]) if len(sys.argv) > 2 else 12
stacks = []
for block in open(path).read().split("STACK ")[1:]:
    lines = block.strip().split("\n")
    stacks.append((int(lines[0]), [l.split() for l in lines[1:]]))
stacks.sort(key=lambda s: -s[0])
print("allocations recorded:", sum(c for c, _ in stacks))
for count, frames in stacks[:top]:
    print("=== count", count)
    for obj, off in frames[:10]:
        if ".so" not in obj.rsplit("/", 1)[-1] and obj != "?":
            fn = subprocess.run(["addr2line", "-f", "-e", obj, off], capture_output=True, text=True).stdout.split("\n")[0]
            fn = subprocess.run(["swift", "demangle", "--simplified", "--compact", fn], capture_output=True, text=True).stdout.strip()
            print("   ", fn[:160])
        else:
            print("   ", obj.rsplit("/", 1)[-1], off)
