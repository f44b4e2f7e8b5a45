"""The house's rules, checked on the source: imports run one way (a stage uses only the stages before it), ``lib``
knows nothing of Dagster, the settings, the API, the CLI, the demo or the renderings, and no module outgrows 400
lines."""

import ast
from pathlib import Path

import quant_assets

LIB = Path(quant_assets.__file__).parent / "lib"
# The pipeline's stages in order; ``vocabulary`` may be used from anywhere.
STAGES = ("storage", "market", "features", "models", "walk_forward", "ensemble", "projections")
OUTSIDE_LIB = {"dagster", "dagster_dbt", "dagster_duckdb", "dagster_duckdb_polars"}


def imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return names


def modules():
    return sorted(p for p in LIB.rglob("*.py") if p.name != "__init__.py" or p.stat().st_size)


def test_a_stage_imports_only_itself_the_stages_before_it_and_the_vocabulary():
    wrong = []
    for path in modules():
        stage = path.relative_to(LIB).parts[0].removesuffix(".py")
        for name in imports(path):
            parts = name.split(".")
            if parts[0] in OUTSIDE_LIB or (parts[0] == "quant_assets" and parts[1:2] != ["lib"]):
                wrong.append(f"{path.relative_to(LIB)} imports {name}")
            elif parts[:2] == ["quant_assets", "lib"] and len(parts) > 2 and parts[2] in STAGES and stage in STAGES \
                    and STAGES.index(parts[2]) > STAGES.index(stage):
                wrong.append(f"{path.relative_to(LIB)} ({stage}) imports the later stage {name}")
    assert not wrong, "\n".join(wrong)


def test_no_lib_module_exceeds_400_lines():
    long = {str(p.relative_to(LIB)): n for p in modules() if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long
