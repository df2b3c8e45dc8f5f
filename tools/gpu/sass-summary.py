#!/usr/bin/env python3
"""Where a kernel's instructions and stalls are, from the SASS page kernel-profile.sh SASS=1 exports (ncu --page source
--csv --print-source sass): one row per SASS instruction with its executed count (warp level) and sampled stall reasons.

  python3 tools/gpu/sass-summary.py sass-KERNEL.csv regions   instructions and stall samples between barriers and
                                                               cp.async commits (LDGDEPBAR), the kernel's phases
  python3 tools/gpu/sass-summary.py sass-KERNEL.csv ops       executed instructions by opcode
  python3 tools/gpu/sass-summary.py sass-KERNEL.csv list      every executed instruction: count, running total,
                                                               stall samples, the two largest stall reasons

Counts are summed over the launch's warps; divide by the warps (grid × block / 32) for a warp's chain. Written for this
repository's profiles: no maintained tool reads ncu's CSV export this way.
"""
import collections
import csv
import sys

PHASE_ENDS = ("BAR.SYNC", "LDGDEPBAR", "UCGABAR_WAIT", "EXIT")


def rows(path):
    table = list(csv.reader(open(path, newline="")))
    header = table[1]  # the first line names the kernel
    source = header.index("Source")
    executed = header.index("Instructions Executed")
    samples = header.index("Warp Stall Sampling (All Samples)")
    stalls = [(i, h[len("stall_"):]) for i, h in enumerate(header) if h.startswith("stall_") and "Not Issued" not in h]
    for row in table[2:]:
        if len(row) <= executed:
            continue
        reasons = {name: int(row[i]) for i, name in stalls if row[i] not in ("", "0")}
        yield row[0], row[source].strip(), int(row[executed] or 0), int(row[samples] or 0), reasons


def opcode(source):
    words = source.split()
    word = words[1] if words and words[0].startswith("@") and len(words) > 1 else (words[0] if words else "")
    return word.split(".")[0]


def main():
    path, mode = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "regions"
    data = list(rows(path))
    print(f"{sum(r[2] for r in data)} instructions executed, {sum(r[3] for r in data)} stall samples")
    if mode == "ops":
        counts = collections.Counter()
        for _, source, executed, _, _ in data:
            counts[opcode(source)] += executed
        for name, count in counts.most_common(30):
            print(f"{count:10d} {name}")
    elif mode == "list":
        total = 0
        for address, source, executed, sampled, reasons in data:
            total += executed
            if executed or sampled:
                top = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:2])
                print(f"{address[-6:]} {executed:8d} {total:9d} {sampled:5d}  {source[:70]:70s} {top}")
    else:
        executed = sampled = 0
        reasons = collections.Counter()
        for address, source, count, samples, why in data:
            executed += count
            sampled += samples
            reasons.update(why)
            if any(source.lstrip("@!P0123456789 ").startswith(end) for end in PHASE_ENDS) and count:
                top = ", ".join(f"{k} {v}" for k, v in reasons.most_common(3))
                print(f"to {address[-6:]} {source[:24]:24s} {executed:10d} instructions {sampled:5d} samples  {top}")
                executed = sampled = 0
                reasons.clear()


if __name__ == "__main__":
    main()
