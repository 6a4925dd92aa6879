"""Precision and recall of the verifier (qa.verify.check) on the labelled adversarial claims.

    python scripts/bench_verify.py [tests/eval/claims.jsonl] [--json] [--errors]

precision: share of accepted claims that are supported; recall: share of supported claims accepted. Printed overall,
per batch of the set ("half" 1 was written before the verifier was built, 2 after it, unseen while building, then used
to improve it; 3 after the verifier was final, never used to change it), per language (a French claim over an English
span counts under "fr"), per claim/span language pair and per kind.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.verify import check  # noqa: E402


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def judge(rows: list[dict]) -> list[dict]:
    """Each row with the verifier's decision and reason."""
    out = []
    for r in rows:
        v = check(r["claim"], r["span"], r["lang"], "fr" if "fr_corpus" in r["source"] else "en")
        out.append({**r, "accepted": v.supported, "reason": v.reason, "rule": v.rule})
    return out


def scores(rows: list[dict]) -> dict:
    tp = sum(r["accepted"] and r["label"] for r in rows)
    fp = sum(r["accepted"] and not r["label"] for r in rows)
    pos = sum(r["label"] for r in rows)
    return {"n": len(rows), "supported": pos, "accepted": tp + fp, "false_accepts": fp,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / pos, 4) if pos else None,
            "rejected_unsupported": round(sum(not r["accepted"] and not r["label"] for r in rows) / max(1, len(rows) - pos), 4)}  # noqa: E501


def report(rows: list[dict]) -> dict:
    groups: dict[str, dict[str, list[dict]]] = {"half": defaultdict(list), "kind": defaultdict(list), "lang": defaultdict(list),
                                                "pair": defaultdict(list)}
    for r in rows:
        groups["half"][str(r.get("half", "?"))].append(r)
        groups["kind"][r["kind"]].append(r)
        groups["lang"][r["lang"]].append(r)
        span_lang = "fr" if "fr_corpus" in r["source"] else "en"
        groups["pair"][f"{r['lang']} claim / {span_lang} span"].append(r)
    return {"overall": scores(rows), **{g: {k: scores(v) for k, v in sorted(d.items())} for g, d in groups.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("claims", nargs="?", default=str(ROOT / "tests" / "eval" / "claims.jsonl"))
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--errors", action="store_true", help="list the claims the verifier gets wrong")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = judge(load(Path(args.claims)))
    elapsed = time.perf_counter() - t0
    out = report(rows)
    out["ms_per_claim"] = round(1000 * elapsed / max(1, len(rows)), 2)
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        def fmt(s: dict) -> str:
            p, r = (s[k] if s[k] is not None else "-" for k in ("precision", "recall"))
            caught = s["rejected_unsupported"] if s["n"] > s["supported"] else "-"
            return f"n={s['n']:4d}  precision={p:<6}  recall={r:<6}  unsupported rejected={caught:<6}  false accepts={s['false_accepts']}"

        print(f"overall            {fmt(out['overall'])}")
        for group in ("half", "lang", "pair", "kind"):
            for k, s in out[group].items():
                print(f"{group:5} {k:24} {fmt(s)}")
        print(f"{out['ms_per_claim']} ms per claim")
    if args.errors:
        for r in rows:
            if r["accepted"] != r["label"]:
                tag = "FALSE ACCEPT" if r["accepted"] else "false reject"
                print(f"\n{tag} [{r['kind']}/{r['lang']}/h{r.get('half')}] {r['claim']}\n   span: {r['span']}\n   why: {r['reason']}", file=sys.stderr)


if __name__ == "__main__":
    main()
