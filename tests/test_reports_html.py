"""report.html's tables: where they may wrap, and (in headless Chromium) that no table is wider than the page."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from reports.document import Heading, Paragraph, Table, format_table
from reports.html import render_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
WIDTHS = (1400, 800)


def _ranking_like(n_rows: int = 25) -> Table:
    """As wide as the report's widest tables (the default study's ranking): 17 columns of long identifiers,
    kinds that cannot break ("memorisation", "distribution"), 3-digit numbers and p-values in e-notation."""
    numbers = {name: [(-1) ** i * 0.123456 * (i + 1) for i in range(n_rows)] for name in (
        "agreement", "subject_lo", "subject_hi", "rank_lo", "rank_hi", "p_top3", "cells_lo", "cells_hi",
        "spearman_p", "pearson", "kendall", "n_cells", "family_min", "family_max")}
    kinds = ["memorisation", "distribution", "no_reference", "reference"]
    frame = pd.DataFrame({"rank": range(1, n_rows + 1),
                          "quantity": [f"robustness/dice_WT_or_a_long_metric_name_{i}" for i in range(n_rows)],
                          "kind": [kinds[i % len(kinds)] for i in range(n_rows)], **numbers})
    frame["spearman_p"] = [2.9e-7 * (i + 1) for i in range(n_rows)]
    frame.loc[0, "spearman_p"] = 1.2e-9
    return format_table(frame, "Ranking")


def _evidence_like(n_rows: int = 25) -> Table:
    """Six columns of long evidence sentences, as the scorecard's numbers table."""
    sentence = ("tumour_remove_keep sev 5: 3.1 [1.2, 5.5] (Dice interval overlaps clean); tumour_shrink_keep sev 5: "
                "0.4 [−0.9, 1.8]")
    frame = pd.DataFrame({"metric": [f"metric_{i}" for i in range(n_rows)],
                          **{f"({q}) a question about the metric": [sentence] * n_rows for q in "abcde"}})
    return Table(frame, "Numbers behind the scorecard")


def test_headers_and_text_cells_may_break_after_underscores_and_slashes_numbers_may_not() -> None:
    page = render_html([_ranking_like(2)], Path("."), "t")
    assert "<th>subject_<wbr>lo</th>" in page and '<th class="text">quantity</th>' in page
    assert '<td class="text">robustness/<wbr>dice_<wbr>WT_<wbr>or' in page
    assert "<td>1.2e-09</td>" in page and "<td>-0.247</td>" in page  # numbers: one line, right-aligned
    verdicts = Table(pd.DataFrame({"metric": ["fid"], "(a) detects": ["yes"], "(b) calm": ["inconclusive"]}),
                     "Scorecard", verdicts=True)
    page = render_html([verdicts], Path("."), "t")
    assert '<td class="v-yes">yes</td>' in page and '<td class="v-inconclusive">inconclusive</td>' in page
    assert re.search(r"th, td \{[^}]*white-space: nowrap", page) and re.search(r"td\.text \{ white-space: normal", page)
    assert "@media (max-width: 1000px)" in page


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")
def test_no_table_is_wider_than_the_page_at_1400_and_800_px(tmp_path: Path) -> None:
    blocks = [Heading("Report", 1), Paragraph("Wide tables."), _ranking_like(), _evidence_like()]
    page = render_html(blocks, tmp_path, "Wide tables")
    probe = ("<script>document.body.insertAdjacentHTML('beforeend', '<pre id=\"probe\">' + "
             "[...document.querySelectorAll('div.scroll')].map(d => d.scrollWidth - d.clientWidth).join(' ') + "
             "' page ' + (document.documentElement.scrollWidth - document.documentElement.clientWidth) + '</pre>');"
             "</script>")
    path = tmp_path / "report.html"
    path.write_text(page.replace("</body>", probe + "</body>"))  # the probe runs on a copy, never in a report
    for width in WIDTHS:
        run = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={width},2000",
                              "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120)
        found = re.search(r'<pre id="probe">([-\d ]+) page (-?\d+)</pre>', run.stdout)
        assert found, run.stderr[-2000:]
        overflow = [int(v) for v in found.group(1).split()]
        assert len(overflow) == 2 and overflow == [0, 0], (width, overflow)  # nothing hidden behind a scroll
        assert int(found.group(2)) == 0, width  # and the page itself does not scroll sideways
