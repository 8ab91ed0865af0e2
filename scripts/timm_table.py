"""The timm survey's fixture as a Markdown table (for docs/import.md), printed to stdout.

    python scripts/timm_table.py [tests/fixtures/timm_survey.json]

One row per surveyed model: its family, input, whether cnncalc imports it (else the first refusal's
reason), traced rows, params and MACs (torch's figures) and whether cnncalc's params, buffers,
MACs and output shape equal them; then the families left out, with why.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "timm_survey.json"


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f}M"


def _giga(n: int) -> str:
    return f"{n / 1e9:.2f}G" if n >= 1e8 else f"{n / 1e6:.0f}M"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def table(data: dict) -> str:
    models = data["models"]
    lines = [
        f"timm {data['timm']}, torch {data['torch']}, cnncalc {data['cnncalc']['commit']}: one model per family "
        "(the fewest parameters), at its default input; params and MACs are the model's own "
        "(FlopCounterMode / 2).",
        "",
        "| family | model | input | imports | traced rows | params | MACs | exact | round trip |",
        "|---|---|---|---|---:|---:|---:|---|---|",
    ]
    for name, r in models.items():
        size = "x".join(str(s) for s in r["input"])
        ref = r["torch"]
        if r["imported"]:
            imports, traced = "yes", str(r["traced_rows"])
            wrong = [k for k, ok in r["exact"].items() if not ok]
            exact = "yes" if not wrong else "no: " + ", ".join(wrong)
            trip = r["roundtrip"]
            ok = all(trip.get(k) for k in ("builds", "loads", "same_output"))
            round_trip = (
                "yes" if ok else "no: " + next(k for k in ("builds", "loads", "same_output") if not trip.get(k))
            )
        else:
            imports, traced, exact, round_trip = f"no: {_cell(r['reason'])}", "", "", ""
        lines.append(
            f"| {r['family']} | {name} | {size} | {imports} | {traced} | {_millions(ref['params'])} | "
            f"{_giga(ref['macs'])} | {exact} | {round_trip} |"
        )
    for name, why in data.get("failed", {}).items():
        lines.append(f"| | {name} | | survey failed: {_cell(why)} | | | | | |")
    if data.get("excluded"):
        lines += [
            "",
            "Left out (not convolutional networks):",
            "",
            "| family | smallest model | why |",
            "|---|---|---|",
        ]
        for family, v in data["excluded"].items():
            lines.append(f"| {family} | {v['model']} | {_cell(v['why'])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else FIXTURE
    sys.stdout.write(table(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
