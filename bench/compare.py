#!/usr/bin/env python3
"""Side-by-side table of `scoregen bench` and `bench/torch_bench.py` JSON files (standard library
only). Several files of one framework (repeated runs) are combined by the median of their
medians; the ratio is PyTorch time / scoregen time, so > 1 means scoregen is faster.

    python3 bench/compare.py scoregen-1.json scoregen-2.json torch-1.json torch-2.json
"""

import json
import statistics
import sys


def key(r):
    return (r["model"], r["what"], r.get("sampler") or "", r["batch"], r.get("steps") or 0,
            r.get("precision") or "f32")


def label(k, nfe):
    model, what, sampler, batch, steps, precision = k
    name = f"{model} {what}" + (f" ({precision})" if precision != "f32" else "")
    if sampler:
        name += f" {sampler} {steps} steps" if sampler != "ode" else " ode (adaptive)"
        if nfe:
            name += f", {nfe} NFE"
    return f"{name}, batch {batch}"


def main(paths):
    if len(paths) < 2:
        sys.exit(__doc__)
    runs = {}  # framework -> key -> [median_ms]
    nfes = {}
    meta = {}
    for p in paths:
        try:
            with open(p) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            sys.exit(f"{p}: not a benchmark JSON file ({e})")
        fw = doc.get("framework")
        if fw is None or "records" not in doc:
            sys.exit(f"{p}: missing `framework` or `records`")
        meta.setdefault(fw, set()).add(f"{fw} {doc.get('version', '?')} on {doc.get('device', '?')}")
        for r in doc["records"]:
            runs.setdefault(fw, {}).setdefault(key(r), []).append(r["median_ms"])
            if r.get("nfe"):
                nfes.setdefault((fw, key(r)), r["nfe"])
    if "scoregen" not in runs:
        sys.exit("no scoregen file among the inputs")
    others = [fw for fw in runs if fw != "scoregen"]
    print("; ".join(sorted(m for s in meta.values() for m in s)))
    print()
    head = "| measurement | scoregen ms |" + "".join(f" {o} ms | scoregen speed vs {o} |" for o in others)
    print(head)
    print("|---|---:|" + "---:|---:|" * len(others))
    for k, ms in runs["scoregen"].items():
        sg = statistics.median(ms)
        row = f"| {label(k, nfes.get(('scoregen', k)))} | {fmt(sg, ms)} |"
        for o in others:
            if k in runs[o]:
                t = statistics.median(runs[o][k])
                row += f" {fmt(t, runs[o][k])} | {t / sg:.2f}× |"
            else:
                row += " – | – |"
        print(row)


def fmt(med, values):
    if len(values) == 1:
        return f"{med:.1f}"
    return f"{med:.1f} ({' / '.join(f'{v:.1f}' for v in values)})"


if __name__ == "__main__":
    main(sys.argv[1:])
