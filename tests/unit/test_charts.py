"""The chart helpers draw what they are given, and say what they drew."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # parses our own output, not untrusted input

from dynomatic_daemon.charts import Series, nice_ceiling, sparkline, svg_chart, text_chart, thin

SVG = "{http://www.w3.org/2000/svg}"


def charted(svg: str) -> dict[str, list[tuple[float, float | None]]]:
    root = ET.fromstring(svg)  # noqa: S314
    out = {}
    for path in root.iter(f"{SVG}path"):
        points = []
        for pair in path.attrib["data-points"].split(";"):
            x, y = pair.split(",")
            points.append((float(x), float(y) if y else None))
        out[path.attrib["data-series"]] = points
    return out


def test_svg_chart_is_well_formed_and_carries_every_point() -> None:
    dynos = Series("dynos", [(0, 1), (10, 3), (20, 2)], step=True, axis="right")
    backlog = Series("backlog", [(0, 5), (10, None), (20, 40)])
    svg = svg_chart([backlog, dynos], title="worker <today>", right_label="dynos")
    assert charted(svg) == {
        "backlog": [(0.0, 5.0), (10.0, None), (20.0, 40.0)],
        "dynos": [(0.0, 1.0), (10.0, 3.0), (20.0, 2.0)],
    }
    assert "worker &lt;today&gt;" in svg
    assert "<script" not in svg and "http" not in svg.replace("http://www.w3.org/2000/svg", "")


def test_a_gap_lifts_the_pen_and_a_step_series_draws_steps() -> None:
    svg = svg_chart(
        [Series("a", [(0, 1), (1, None), (2, 1)]), Series("s", [(0, 1), (1, 2)], step=True)],
        title="t",
    )
    root = ET.fromstring(svg)  # noqa: S314
    paths = {p.attrib["data-series"]: p.attrib["d"] for p in root.iter(f"{SVG}path")}
    assert paths["a"].count("M") == 2 and "L" not in paths["a"]
    assert re.search(r"H[\d.]+V[\d.]+", paths["s"])


def test_the_axis_top_is_a_round_number_at_or_above_the_peak() -> None:
    assert [nice_ceiling(v) for v in (0, 0.7, 3, 7, 11, 240, 2600)] == [1, 1, 5, 10, 20, 250, 5000]
    svg = svg_chart([Series("a", [(0, 0), (1, 7)])], title="t")
    assert ">10</text>" in svg  # the left axis tops out at 10


def test_thinning_keeps_spikes_and_bounds_the_size() -> None:
    points = [(float(i), 1.0) for i in range(10_000)]
    points[5_003] = (5_003.0, 99.0)
    kept = thin(points, 200)
    assert len(kept) <= 210
    assert (5_003.0, 99.0) in kept
    assert [p[0] for p in kept] == sorted(p[0] for p in kept)


def test_thinning_keeps_gaps() -> None:
    points: list[tuple[float, float | None]] = [(float(i), 1.0) for i in range(1000)]
    points[500] = (500.0, None)
    assert (500.0, None) in thin(points, 50)


def test_sparkline_scales_to_the_peak_and_marks_missing_data() -> None:
    assert sparkline([0, 4, 8, None]) == "▁▄█·"
    assert len(sparkline(list(range(1000)), width=40)) == 40
    assert sparkline([0, 0]) == "▁▁"


def test_text_chart_labels_each_series_with_its_peak() -> None:
    lines = text_chart([("backlog", [0, 10, 5]), ("dynos", [1, 2, 2])])
    assert lines[0].startswith("backlog ") and lines[0].endswith("peak 10")
    assert lines[1].startswith("dynos   ") and lines[1].endswith("peak 2")
