"""engines/promql.py pinned: the rendered selector, windows and quantile, and each template helper's exact PromQL."""

from __future__ import annotations

import pytest

from llmop.engines.promql import (
    BY,
    DEPLOYMENT_LABEL,
    RATE_WINDOW_S,
    Query,
    counter_rate,
    duration,
    gauge_sum,
    growth,
    mean_of,
    quantile_of,
    render,
    selector,
)

SUM_BY = "sum by (namespace, llmdeployment)"


def test_the_grouping_labels_and_the_rate_window() -> None:
    assert (DEPLOYMENT_LABEL, BY, RATE_WINDOW_S) == ("llmdeployment", "namespace, llmdeployment", 60.0)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4, "1s"), (-5.0, "1s"), (1.0, "1s"), (1.5, "2s"), (2.5, "2s"), (119.6, "120s")]
)
def test_duration_is_whole_seconds_at_least_one(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_selector_escapes_backslash_quote_and_newline() -> None:
    assert selector("ml", "llama") == 'namespace="ml",llmdeployment="llama"'
    assert selector('a"b\\c', "l\nm") == 'namespace="a\\"b\\\\c",llmdeployment="l\\nm"'


def test_render_fills_selector_windows_and_quantile() -> None:
    template = "${selector}|${window}|${rate_window}|${quantile}"
    assert render(template, "S") == "S|120s|60s|0.95"
    assert render(template, "S", 30, 0.5, 15.4) == "S|30s|15s|0.5"
    assert render("${quantile}", "S", quantile=0.999) == "0.999"
    query = Query("n", "${selector} ${window} ${quantile} ${rate_window}", "ms", "h")
    assert query.render("ns", "x") == 'namespace="ns",llmdeployment="x" 120s 0.95 60s'
    assert query.render("ns", "x", 45, 0.99) == 'namespace="ns",llmdeployment="x" 45s 0.99 60s'


def test_each_template_helper_word_for_word() -> None:
    assert quantile_of("rate(x_bucket{${selector}}[${window}])") == (
        "histogram_quantile(${quantile}, sum by (le, namespace, llmdeployment) (rate(x_bucket{${selector}}"
        "[${window}])))"
    )
    assert mean_of("m") == (
        f"{SUM_BY} (rate(m_sum{{${{selector}}}}[${{window}}])) / {SUM_BY} (rate(m_count{{${{selector}}}}[${{window}}]))"
    )
    assert mean_of("m", 'le="1",') == (
        f'{SUM_BY} (rate(m_sum{{le="1",${{selector}}}}[${{window}}])) / '
        f'{SUM_BY} (rate(m_count{{le="1",${{selector}}}}[${{window}}]))'
    )
    assert gauge_sum("g") == f"{SUM_BY} (g{{${{selector}}}})"
    assert growth("g") == f"{SUM_BY} (deriv(g{{${{selector}}}}[${{rate_window}}]))"
    assert counter_rate("c") == f"{SUM_BY} (rate(c{{${{selector}}}}[${{rate_window}}]))"
    rendered = render(counter_rate("c"), selector("ns", "x"), rate_window_s=30)
    assert rendered == f'{SUM_BY} (rate(c{{namespace="ns",llmdeployment="x"}}[30s]))'
