"""The blocking lookahead audit as a user meets it: a leaky feature fails the check and blocks everything downstream."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

from quant_assets.defs.features.assets import DBT_PROJECT_DIR, FEATURES_KEY
from quant_assets.definitions import build_definitions
from quant_assets_tests.support.runs import materialize

LEAK = "    lead(r.ret_1d) over (partition by p.symbol order by p.date) as leaky_next_return,\n"


def leaky_project(tmp_path: Path) -> Path:
    """A copy of dbt_features whose wide feature model peeks at tomorrow's return, parsed like `make install` does."""
    project = tmp_path / "dbt_features"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    model = project / "models" / "features" / "features.sql"
    text = model.read_text()
    model.write_text(text.replace("    r.ret_1d,\n", "    r.ret_1d,\n" + LEAK, 1))
    env = {**os.environ, "QUANT_WAREHOUSE": str(tmp_path / "parse.duckdb"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    subprocess.run([str(Path(sys.executable).parent / "dbt"), "parse", "--quiet", "--project-dir", str(project),
                    "--profiles-dir", str(project)], env=env, check=True, capture_output=True)
    return project


def test_planted_lead_feature_fails_the_audit_and_blocks_downstream(quant_home, tmp_path, monkeypatch):
    monkeypatch.setenv("QUANT_WF_START", "2022-06-01")
    defs = build_definitions(dbt_project_dir=leaky_project(tmp_path))
    selection = dg.AssetSelection.groups("market", "features") | dg.AssetSelection.assets("walk_forward_plan")
    result = materialize(selection, partition_key="2022-06-01", raise_on_error=False, definitions=defs)
    audits = [e for e in result.get_asset_check_evaluations() if e.check_name == "feature_lookahead_audit"]
    assert len(audits) == 1 and not audits[0].passed
    violations = audits[0].metadata["violations"].value
    assert violations and all("features.leaky_next_return" in v for v in violations)
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert FEATURES_KEY in materialized
    assert dg.AssetKey("walk_forward_plan") not in materialized
