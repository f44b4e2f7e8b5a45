"""The vocabulary is named once: the dbt project's vars and the web app's horizons say what lib/vocabulary.py says.

dbt keeps its own copy in dbt_project.yml, so the project runs the same by hand, under Dagster and in the lookahead
audit's separate compile; this test is what ties that copy to the vocabulary."""

import re
from pathlib import Path

import yaml

from quant_assets.lib.vocabulary import HORIZON_LABELS, HORIZONS, INDEX_SYMBOL

REPO = Path(__file__).resolve().parents[2]


def test_the_dbt_vars_are_the_vocabulary():
    dbt_vars = yaml.safe_load((REPO / "dbt_features" / "dbt_project.yml").read_text())["vars"]
    assert dbt_vars["benchmark_symbol"] == INDEX_SYMBOL
    assert list(dbt_vars["horizons"].items()) == [(h.label, [h.equity_sessions, h.crypto_days]) for h in HORIZONS]


def test_the_web_app_names_the_vocabulary_horizons_in_order():
    source = (REPO / "web" / "components" / "api.ts").read_text()
    names = re.search(r"HORIZON_NAMES\b[^=]*=\s*\{([^}]*)\}", source).group(1)
    assert tuple(re.findall(r'"([^"]+)"\s*:', names)) == HORIZON_LABELS
