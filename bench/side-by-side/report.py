#!/usr/bin/env python3
"""Markdown table from bench/side-by-side/run.sh results.

    report.py RESULTS[,RESULTS...] [CONDITIONS]

RESULTS lines: target|client|row|metric|value (one per measurement; repeats
are medians). CONDITIONS lines: conditions|key|value.
"""
import statistics
import sys

ALL_TARGETS = ["gregor", "kafka", "kafka-fsync", "mock"]
NAMES = {"gregor": "Gregor (durable)", "kafka": "Kafka 4.3.1", "kafka-fsync": "Kafka, fsync each append",
         "mock": "mock"}


def lower_is_better(metric):
    return metric.endswith("_ms") or metric.endswith("_MiB")


def fmt(v):
    if v is None:
        return "n/a"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell(vals):
    if not vals:
        return "n/a"
    m = statistics.median(vals)
    if len(vals) > 1:
        return f"{fmt(m)} ({fmt(min(vals))}–{fmt(max(vals))})"
    return fmt(m)


def main():
    res, cond, order = {}, [], []
    lines = [l for f in sys.argv[1].split(",") for l in open(f)]
    for line in lines:
        parts = line.rstrip("\n").split("|")
        if len(parts) != 5:
            continue
        tg, client, row, metric, value = parts
        try:
            v = float(value)
        except ValueError:
            continue
        key = (client, row, metric)
        if key not in order:
            order.append(key)
        res.setdefault(key, {}).setdefault(tg, []).append(v)
    if len(sys.argv) > 2:
        for line in open(sys.argv[2]):
            parts = line.rstrip("\n").split("|", 2)
            if len(parts) == 3:
                cond.append((parts[1], parts[2]))

    present = {t for by in res.values() for t in by}
    TARGETS = [t for t in ALL_TARGETS if t in present or t in ("gregor", "kafka", "mock")]
    others = [t for t in TARGETS if t != "gregor"]
    print("| client | row | metric | " + " | ".join(NAMES[t] for t in TARGETS) + " | "
          + " | ".join("Gregor/" + NAMES[t] for t in others) + " | Gregor ahead of Kafka? |")
    print("|---|---|---|" + "--:|" * (len(TARGETS) + len(others)) + ":-:|")
    met = missed = 0
    extra = []
    order = [k for k in order if k[0] != "-"] + [k for k in order if k[0] == "-"]
    for key in order:
        client, row, metric = key
        if client == "-" and row == "-":
            extra.append(key)
            continue
        if metric == "messages":
            continue
        by = res[key]
        med = {t: statistics.median(by[t]) if by.get(t) else None for t in TARGETS}
        cells = [cell(by.get(t, [])) for t in TARGETS]

        def ratio(o):
            if med["gregor"] is None or med[o] in (None, 0):
                return "–"
            return f"{med['gregor'] / med[o]:.2f}"

        ahead = ""
        if med["gregor"] is not None and med["kafka"] is not None:
            better = (med["gregor"] < med["kafka"]) if lower_is_better(metric) else (med["gregor"] > med["kafka"])
            ahead = "yes" if better else "**no**"
            met += better
            missed += not better
        print(f"| {client} | {row} | {metric} | " + " | ".join(cells) + " | "
              + " | ".join(ratio(t) for t in others) + f" | {ahead} |")
    print()
    print(f"Gregor ahead of Kafka on {met} of {met + missed} compared metrics.")
    # mock consume: how many messages it still had
    for key in order:
        if key[2] == "messages" and res[key].get("mock"):
            print(f"- mock `{key[1]}` read {cell(res[key]['mock'])} messages (it keeps only its last 5 MiB).")
    print()
    if extra or cond:
        print("| condition | value |")
        print("|---|---|")
        for k, v in cond:
            print(f"| {k} | {v} |")
        for key in extra:
            for t in TARGETS:
                if res[key].get(t):
                    print(f"| {t} {key[2]} | {', '.join(fmt(x) for x in res[key][t])} |")


if __name__ == "__main__":
    main()
