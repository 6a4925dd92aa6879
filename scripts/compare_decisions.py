"""Decision files side by side: the held-out figures `python -m qa.fit` wrote in each, and the change in questions.

    .venv/bin/python scripts/compare_decisions.py BEFORE.npz AFTER.npz [--sets NAME,...] [--json]

For each held-out set both files were measured on, each figure before → after, and how many questions the change is
(the difference times the questions it is a share of): a change of one or two questions is noise. Meant for a
candidate reader (QA_READER_FILE) or fitting change, each refitted by `python -m qa.fit --out FILE`, the same --limit
for both (`--limit 150` is a quick screening: 25 minutes a reader once the indexes are built).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.decide import FORMAT, VERSION  # noqa: E402
from qa.errors import ModelError  # noqa: E402
from qa.saved import load_npz  # noqa: E402

# figure: the count it is a share of (None: not a share of questions)
FIGURES = {"retrieval_hit@5": "n", "best_sentence_answers": "n", "answered_correctly": "n", "false_refusals": "n",
           "false_refusals_intact": "n_intact", "near_misses_refused": "n_unanswerable", "said_not_in_documents": None,
           "separation_auc": None, "answered": "n", "shown": "n", "precision": None}


def held_out(path: Path) -> dict[str, dict]:
    """The held-out figures in a decision file's metadata."""
    meta, _ = load_npz(path, FORMAT, VERSION, "decision", "refit it with `python -m qa.fit`")
    if not meta.get("held_out"):
        raise ModelError(f"The decision file {path} holds no held-out figures: refit it with `python -m qa.fit`.")
    return meta["held_out"]


def compare(before: dict[str, dict], after: dict[str, dict], sets: list[str] | None = None) -> dict[str, dict]:
    """{set: {figure: {before, after, questions}}} for the sets and figures both hold."""
    out: dict[str, dict] = {}
    for name in sets or [n for n in before if n in after]:
        a, b = before.get(name, {}), after.get(name, {})
        rows = {}
        for figure, count in FIGURES.items():
            if isinstance(a.get(figure), float) and isinstance(b.get(figure), float):
                n = b.get(count) if count else None
                rows[figure] = {"before": a[figure], "after": b[figure],
                                "questions": round((b[figure] - a[figure]) * n) if n else None}
        if rows:
            out[name] = rows
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    p.add_argument("--sets", default=None, help="comma-separated held-out set names (default: every set both hold)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    try:
        before, after = held_out(args.before), held_out(args.after)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sets = args.sets.split(",") if args.sets else None
    unknown = [n for n in sets or [] if n not in before or n not in after]
    if unknown:
        print(f"error: both files must hold the held-out set {unknown[0]!r} (they share: {', '.join(n for n in before if n in after)}).",
              file=sys.stderr)
        return 2
    rows = compare(before, after, sets)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for name, figures in rows.items():
        cells = [f"{k} {v['before']:.3f} → {v['after']:.3f}" + (f" ({v['questions']:+d} q.)" if v["questions"] else "")
                 for k, v in figures.items()]
        print(f"{name:<34} " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
