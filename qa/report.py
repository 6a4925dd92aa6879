"""A self-contained HTML page of an evaluation: metrics, plots (inline PNG) and every question's result."""

from __future__ import annotations

import base64
import html
import io

from .evaluate import METRIC_ORDER


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _plots(rows: list[dict]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = []
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist([r["timings"].get("total_s", 0) for r in rows], bins=20, color="#2b6cb0", label="answer")
    ax.hist([r["timings"].get("first_token_s", 0) for r in rows], bins=20, color="#ed8936", alpha=0.7, label="first token")
    ax.set_xlabel("seconds"), ax.set_ylabel("questions"), ax.legend(), ax.set_title("Latency")
    plots.append(("Latency distribution", _png(fig)))
    plt.close(fig)
    ranks = [r["retrieval_rank"] for r in rows if not r["unanswerable"]]
    if ranks:
        ks = list(range(1, 6))
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot(ks, [sum(1 for x in ranks if x and x <= k) / len(ranks) for k in ks], marker="o", color="#2f855a")
        ax.set_ylim(0, 1.02), ax.set_xticks(ks), ax.set_xlabel("k"), ax.set_ylabel("hit@k"), ax.set_title("Retrieval hit@k")
        plots.append(("Retrieval hit@k", _png(fig)))
        plt.close(fig)
    return plots


def render(metrics: dict, rows: list[dict], title: str = "qa evaluation") -> str:
    esc = html.escape
    metric_rows = "".join(
        f"<tr><td>{esc(k)}</td><td>{metrics[k] if isinstance(metrics[k], int) else f'{metrics[k]:.3f}'}</td></tr>" for k in METRIC_ORDER
    )
    figures = "".join(f'<figure><img alt="{esc(t)}" src="{src}"><figcaption>{esc(t)}</figcaption></figure>' for t, src in _plots(rows))

    def verdict(r: dict) -> str:
        if r["unanswerable"]:
            return "refused ✓" if r["refused"] else "answered ✗"
        return "correct ✓" if r["correct"] else ("refused ✗" if r["refused"] else "wrong ✗")

    items = "".join(
        f"<tr class='{'ok' if verdict(r).endswith('✓') else 'bad'}'><td>{esc(r['question'])}</td><td>{esc(r['answer'])}</td>"
        f"<td>{esc(' | '.join(r['gold']) or '(unanswerable)')}</td><td>{verdict(r)}</td><td>{r['retrieval_rank'] or '-'}</td>"
        f"<td>{r['timings'].get('total_s', 0):.2f}</td></tr>"
        for r in rows
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:14px system-ui,sans-serif;margin:2rem;color:#1a202c}}table{{border-collapse:collapse;margin:1rem 0}}
td,th{{border:1px solid #cbd5e0;padding:.3rem .5rem;vertical-align:top;text-align:left}}tr.bad td{{background:#fff5f5}}
tr.ok td{{background:#f0fff4}}figure{{display:inline-block;margin:0 1rem 1rem 0}}img{{max-width:100%}}</style></head>
<body><h1>{esc(title)}</h1><h2>Metrics</h2><table><tr><th>metric</th><th>value</th></tr>{metric_rows}</table>
<h2>Plots</h2>{figures}<h2>Questions</h2><table><tr><th>question</th><th>answer</th><th>gold</th><th>verdict</th>
<th>gold passage rank</th><th>seconds</th></tr>{items}</table></body></html>"""
