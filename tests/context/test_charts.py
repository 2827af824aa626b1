"""Chart geometry (idp/context/charts.py): scaled into the plot area, gaps for missing values,
labels kept inside the drawing."""

from __future__ import annotations

from idp.context.charts import bar_chart, line_chart


def test_line_chart_maps_0_to_100_into_the_plot_area():
    chart = line_chart([("a", 0.0), ("b", None), ("c", 100.0), ("d", 50.0)])
    assert [p.label for p in chart.points] == ["a", "c", "d"]  # None is skipped
    first, top, middle = chart.points
    assert first.y == chart.bottom and top.y == chart.top
    assert middle.y == (chart.top + chart.bottom) / 2
    assert first.x == chart.left and middle.x == chart.right
    assert chart.path.startswith(f"M{first.x},{first.y} L")
    assert chart.x_labels[0][2] == "start" and chart.x_labels[-1][2] == "end"


def test_line_chart_clamps_and_handles_empty_and_single():
    assert line_chart([]).empty and line_chart([("a", None)]).empty
    single = line_chart([("a", 140.0)])
    assert single.points[0].y == single.top and single.x_labels[0][2] == "middle"


def test_bar_chart_scales_bars_and_uses_whole_ticks_for_counts():
    chart = bar_chart([("Physics", 50.0, "steady"), ("Maths", None, "steady")])
    full = 640 - 130 - 56
    assert chart.bars[0].width == full / 2 and chart.bars[1].width == 0
    assert [label for _, label in chart.grid] == ["0", "25", "50", "75", "100"]
    counts = bar_chart([("Mon", 5, "activity")], maximum=5)
    assert [label for _, label in counts.grid] == ["0", "2", "4"]
    assert [label for _, label in bar_chart([], maximum=12).grid] == ["0", "3", "6", "9", "12"]
    assert not chart.empty and bar_chart([("x", None, "steady")]).empty
