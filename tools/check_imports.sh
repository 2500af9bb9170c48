#!/usr/bin/env bash
# Import rules of docs/architecture.md, checked on every Swift file under Sources/ and Tests/.
#
#   bash tools/check_imports.sh [ROOT]     # exit 1 on any violation, naming file, line and rule
#   bash tools/check_imports.sh --self-test
#       also plants one violation per rule in a scratch copy and requires each to be caught
#
# Ends with "N passed, M failed" (N = rules checked clean, or planted violations caught).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import os, re, shutil, sys, tempfile

LIBC = {"Glibc", "Darwin", "Musl"}
# What each module may import. Modules not listed (new targets) meet only the global rules.
ALLOWED = {
    # The arithmetic: no I/O, no Foundation, no other module.
    "AIOTModel": LIBC | {"CKernels"},
    # The pure data path (windows, payloads, StreamProcessor): no MQTT, no logging, no Foundation.
    "AIOTStreams": LIBC | {"AIOTModel"},
    "AIOTTelemetry": LIBC | {"AIOTModel"},
    # The C wrappers: each the only importer of its C module.
    "AIOTMQTT": LIBC | {"CMosquitto", "Synchronization", "SystemPackage"},
    "FTDI": LIBC | {"CFTDI", "SystemPackage"},
    "AIOTBoard": LIBC | {"AIOTModel", "FTDI", "Foundation", "Synchronization"},
    # The board simulator (tests and the sim: device) and the one device/engine selector.
    "AIOTBoardSim": LIBC | {"AIOTModel", "AIOTBoard", "Foundation", "Synchronization"},
    "AIOTDevices": LIBC | {"AIOTModel", "AIOTBoard", "AIOTBoardSim", "Foundation", "Synchronization"},
    # The artifact channel: crypto and files, no MQTT, no logging (the daemon wires those).
    "AIOTDeploy": LIBC | {"AIOTModel", "Crypto", "Foundation"},
    # Test support (children for the integration tests): libc only, no project module.
    "AIOTTestSupport": LIBC,
    "AIOTDaemon": LIBC | {"AIOTModel", "AIOTStreams", "AIOTMQTT", "AIOTTelemetry", "AIOTBoard", "AIOTBoardSim", "AIOTDevices", "AIOTDeploy", "Crypto", "Foundation",
                          "Synchronization", "Logging", "Metrics", "Prometheus", "ServiceLifecycle", "UnixSignals", "TOMLKit"},
}
# Global rules: (module imported, who may import it, why).
ONLY = [
    ("CMosquitto", {"AIOTMQTT"}, "only AIOTMQTT imports CMosquitto"),
    ("CFTDI", {"FTDI"}, "only FTDI imports CFTDI"),
    ("CKernels", {"AIOTModel", "AIOTModelTests"}, "only AIOTModel (and its tests) calls the C kernels"),
    ("FTDI", {"FTDI", "AIOTBoard", "AIOTBoardSim", "FTDITests", "AIOTBoardTests"}, "only the board layer uses the FTDI wrapper"),
    ("AIOTDaemon", {"aiotd", "AIOTDaemonTests"}, "only aiotd (and its tests) links the daemon core"),
    ("AIOTTestSupport", {"AIOTMQTTTests", "AIOTDaemonTests"}, "only the tests use the test support"),
]
IMPORT = re.compile(r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*import\s+(?:(?:struct|class|enum|protocol|func|var|let|typealias)\s+)?([A-Za-z_][A-Za-z0-9_]*)")

def check(root):
    bad = []
    for top in ("Sources", "Tests"):
        base = os.path.join(root, top)
        if not os.path.isdir(base): continue
        for module in sorted(os.listdir(base)):
            for dirpath, _, files in os.walk(os.path.join(base, module)):
                for f in sorted(files):
                    if not f.endswith(".swift"): continue
                    path = os.path.join(dirpath, f)
                    for n, line in enumerate(open(path, encoding="utf-8", errors="replace"), 1):
                        m = IMPORT.match(line)
                        if not m: continue
                        imported = m.group(1)
                        rel = os.path.relpath(path, root)
                        if top == "Sources" and module in ALLOWED and imported not in ALLOWED[module]:
                            bad.append(f"{rel}:{n}: {module} imports {imported} (allowed: {', '.join(sorted(ALLOWED[module]))})")
                        for target, who, why in ONLY:
                            if imported == target and module not in who:
                                bad.append(f"{rel}:{n}: {module} imports {imported}: {why}")
    return bad

def main():
    args = sys.argv[1:]
    self_test = "--self-test" in args
    roots = [a for a in args if not a.startswith("--")]
    root = roots[0] if roots else "."
    passed = failed = 0
    bad = check(root)
    for b in bad: print("violation:", b)
    if bad: failed += 1
    else:
        passed += 1
        print(f"import rules: clean ({len(ALLOWED)} modules with allow-lists, {len(ONLY)} global rules)")
    if self_test:
        # One planted violation per rule kind, each in a scratch copy; each must be reported.
        plants = [("Sources/AIOTStreams", "import Foundation"), ("Sources/AIOTModel", "import AIOTBoard"),
                  ("Sources/AIOTDaemon", "import CMosquitto"), ("Sources/aiotctl", "import CFTDI"),
                  ("Sources/aiotctl", "import AIOTDaemon"), ("Sources/AIOTStreams", "@testable import AIOTMQTT"),
                  ("Sources/AIOTDeploy", "import AIOTMQTT"), ("Sources/aiotd", "import AIOTTestSupport"),
                  ("Sources/AIOTTestSupport", "import Foundation")]
        for where, line in plants:
            with tempfile.TemporaryDirectory() as tmp:
                for top in ("Sources", "Tests"):
                    if os.path.isdir(os.path.join(root, top)):
                        shutil.copytree(os.path.join(root, top), os.path.join(tmp, top))
                os.makedirs(os.path.join(tmp, where), exist_ok=True)
                with open(os.path.join(tmp, where, "Planted.swift"), "w") as fh: fh.write(line + "\n")
                caught = [b for b in check(tmp) if "Planted.swift" in b]
                if caught:
                    passed += 1; print(f"self-test: planted '{line}' in {where}: caught: {caught[0]}")
                else:
                    failed += 1; print(f"self-test: planted '{line}' in {where}: NOT caught")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)

main()
PY
