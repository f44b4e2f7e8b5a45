"""`quant why SYMBOL` as a person meets it, on the surface warehouse: the members, the skill, the probability of a
gain and the limit as stored, exit status 0; an unknown symbol or day, one line and exit status 1; a bad date, 2."""

import json

import pytest

from quant_assets.cli import main
from quant_assets.demo.surface import build_surface_warehouse


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("why-cli")
    build_surface_warehouse(home / "warehouse.duckdb")
    return home


def test_quant_why_prints_what_the_weight_rests_on(home, monkeypatch, capsys):
    monkeypatch.setenv("QUANT_HOME", str(home))
    assert main(["why", "jnj", "--json"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert [m["model"] for m in line["members"]] == ["garch", "lightgbm", "ridge"]
    assert line["weight_limit"] == "not eligible" and line["confidence_source"] == "base_rate"
    assert main(["why", "JNJ"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0] == f"JNJ in the advice of {line['as_of']} (1m sizing, window {line['window_start']})"
    assert text[1].split()[:3] == ["garch", "mean", f"{line['members'][0]['mean']:+.2%}"]
    assert f"members' spread {line['member_spread']:.2%}; skill +3.00%" in text[4]
    assert text[6].startswith(f"chance of a gain: calibrated {line['prob_gain']:.0%}, base rate 54%; shown 54% (base rate")
    assert text[7] == "weight 0.0%, limited by not eligible: expected return -0.25% at 1m is not positive"


@pytest.mark.parametrize(("args", "status", "says"), [
    (["why", "TSLA"], 1, "quant: no advice on TSLA stored for"),
    (["why", "AAPL", "--as-of", "2001-01-02"], 1, "quant: no advice stored for 2001-01-02"),
    (["why", "AAPL", "--as-of", "soon"], 2, "quant: argument --as-of: 'soon' is not a date written YYYY-MM-DD"),
])
def test_quant_why_refuses_in_one_line(home, monkeypatch, capsys, args, status, says):
    monkeypatch.setenv("QUANT_HOME", str(home))
    assert main(args) == status
    error = capsys.readouterr().err
    assert error.startswith(says) and error.count("\n") == 1
