#!/usr/bin/env python3
"""Markdown table from bench/storage/run.sh results.

    report.py RESULTS [CONDITIONS]

RESULTS lines:  TARGET|ROW|METRIC|VALUE        (repeats: median, min-max shown)
                goal|ROW|METRIC|TEXT|OP|LIMIT  (issue 8's target for Gregor; OP is <= or >=)
CONDITIONS lines: conditions|KEY|VALUE
"""
import statistics
import sys

NAMES = {"gregor": "Gregor", "kafka": "Kafka 4.3.1"}


def fmt(v):
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
    res, goals, order, targets = {}, {}, [], []
    for line in open(sys.argv[1]):
        parts = line.rstrip("\n").split("|")
        if parts[0] == "goal" and len(parts) == 6:
            goals[(parts[1], parts[2])] = (parts[3], parts[4], float(parts[5]))
            continue
        if len(parts) != 4:
            continue
        tg, row, metric, value = parts
        try:
            v = float(value)
        except ValueError:
            continue
        if v != v:  # nan: not measured
            continue
        if tg not in targets:
            targets.append(tg)
        if (row, metric) not in order:
            order.append((row, metric))
        res.setdefault((row, metric), {}).setdefault(tg, []).append(v)

    print("| row | metric | " + " | ".join(NAMES.get(t, t) for t in targets)
          + " | issue 8 target | Gregor meets it? |")
    print("|---|---|" + "--:|" * len(targets) + "---|:-:|")
    for key in order:
        by = res[key]
        goal = goals.get(key)
        met = ""
        if goal and by.get("gregor"):
            m = statistics.median(by["gregor"])
            ok = m <= goal[2] if goal[1] == "<=" else m >= goal[2]
            met = "yes" if ok else "**no**"
        print(f"| {key[0]} | {key[1]} | " + " | ".join(cell(by.get(t, [])) for t in targets)
              + f" | {goal[0] if goal else ''} | {met} |")
    if len(sys.argv) > 2:
        print()
        print("| condition | value |")
        print("|---|---|")
        for line in open(sys.argv[2]):
            parts = line.rstrip("\n").split("|", 2)
            if len(parts) == 3:
                print(f"| {parts[1]} | {parts[2]} |")


if __name__ == "__main__":
    main()
