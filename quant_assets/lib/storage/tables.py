"""The table contract of DESIGN.md as DuckDB DDL (the tables Python writes; dbt owns features.* and labels.*)."""

_DISTRIBUTION = """
    mean DOUBLE, std DOUBLE, q05 DOUBLE, q10 DOUBLE, q25 DOUBLE, q50 DOUBLE, q75 DOUBLE, q90 DOUBLE, q95 DOUBLE,
    p_up DOUBLE, realized DOUBLE"""

DDL: dict[str, str] = {
    "market.prices": """
        CREATE TABLE IF NOT EXISTS market.prices (
            symbol VARCHAR NOT NULL, date DATE NOT NULL, asset_class VARCHAR NOT NULL,
            open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE NOT NULL, volume DOUBLE, source VARCHAR NOT NULL,
            PRIMARY KEY (symbol, date))""",
    "market.onchain": """
        CREATE TABLE IF NOT EXISTS market.onchain (
            asset VARCHAR NOT NULL, metric VARCHAR NOT NULL, date DATE NOT NULL, value DOUBLE NOT NULL,
            known_at TIMESTAMP NOT NULL, source VARCHAR NOT NULL,
            PRIMARY KEY (asset, metric, date))""",
    # A provider's restatement of stored prices (lib/market/adjustments.py): days before effective_date were
    # restated; propagated_at is set once a features run has rebuilt from restated_from.
    "market.adjustments": """
        CREATE TABLE IF NOT EXISTS market.adjustments (
            symbol VARCHAR NOT NULL, effective_date DATE NOT NULL, factor DOUBLE NOT NULL, detected_on DATE NOT NULL,
            restated_from DATE NOT NULL, restated_to DATE NOT NULL, rows_restated BIGINT NOT NULL,
            source VARCHAR NOT NULL, recorded_at TIMESTAMP NOT NULL, propagated_at TIMESTAMP,
            returns_changed_from DATE,
            PRIMARY KEY (symbol, effective_date, recorded_at))""",
    # What read prices a restatement changed (lib/storage/refits.py): one row per fit (model, window), window
    # ensemble or advice day stored before the event; refreshed_at is set by the write that replaces it.
    "market.restatement_refits": """
        CREATE TABLE IF NOT EXISTS market.restatement_refits (
            stage VARCHAR NOT NULL, model VARCHAR NOT NULL, partition_date DATE NOT NULL, symbol VARCHAR NOT NULL,
            recorded_at TIMESTAMP NOT NULL, returns_changed_from DATE NOT NULL, refreshed_at TIMESTAMP,
            PRIMARY KEY (stage, model, partition_date, symbol, recorded_at))""",
    "forecasts.plans": """
        CREATE TABLE IF NOT EXISTS forecasts.plans (
            window_start DATE NOT NULL, window_end DATE NOT NULL, horizon VARCHAR NOT NULL,
            train_start DATE, train_label_end_before DATE NOT NULL, embargo_days INTEGER NOT NULL,
            mode VARCHAR NOT NULL, train_rows BIGINT, eval_rows BIGINT, latest_train_label_end DATE,
            PRIMARY KEY (window_start, horizon))""",
    "forecasts.predictions": f"""
        CREATE TABLE IF NOT EXISTS forecasts.predictions (
            window_start DATE NOT NULL, model VARCHAR NOT NULL, symbol VARCHAR NOT NULL, date DATE NOT NULL,
            horizon VARCHAR NOT NULL, {_DISTRIBUTION}, label_end DATE,
            PRIMARY KEY (window_start, model, symbol, date, horizon))""",
    "forecasts.fits": """
        CREATE TABLE IF NOT EXISTS forecasts.fits (
            window_start DATE NOT NULL, model VARCHAR NOT NULL, horizon VARCHAR NOT NULL,
            train_rows BIGINT, latest_train_label_end DATE, latest_train_date DATE,
            mlflow_run_id VARCHAR, seconds DOUBLE,
            PRIMARY KEY (window_start, model, horizon))""",
    "forecasts.ensemble": f"""
        CREATE TABLE IF NOT EXISTS forecasts.ensemble (
            window_start DATE NOT NULL, symbol VARCHAR NOT NULL, date DATE NOT NULL, horizon VARCHAR NOT NULL,
            {_DISTRIBUTION}, confidence DOUBLE, label_end DATE,
            sizing_mean DOUBLE, mean_uncertainty DOUBLE, sizing_prior DOUBLE, beats_reference BOOLEAN,
            prob_gain DOUBLE, prob_gain_base_rate DOUBLE, confidence_source VARCHAR,
            PRIMARY KEY (window_start, symbol, date, horizon))""",
    "forecasts.scores": """
        CREATE TABLE IF NOT EXISTS forecasts.scores (
            window_start DATE NOT NULL, model VARCHAR NOT NULL, horizon VARCHAR NOT NULL,
            n BIGINT, ic DOUBLE, rank_ic DOUBLE, crps DOUBLE, pinball DOUBLE, coverage_80 DOUBLE, brier DOUBLE,
            PRIMARY KEY (window_start, model, horizon))""",
    "projections.bands": """
        CREATE TABLE IF NOT EXISTS projections.bands (
            as_of DATE NOT NULL, symbol VARCHAR NOT NULL, horizon VARCHAR NOT NULL,
            p10 DOUBLE, p25 DOUBLE, p50 DOUBLE, p75 DOUBLE, p90 DOUBLE, prob_loss DOUBLE,
            PRIMARY KEY (as_of, symbol, horizon))""",
    "projections.allocations": """
        CREATE TABLE IF NOT EXISTS projections.allocations (
            as_of DATE NOT NULL, symbol VARCHAR NOT NULL, rank INTEGER, asset_class VARCHAR, confidence DOUBLE,
            kelly_weight DOUBLE, half_kelly_weight DOUBLE, last_price DOUBLE,
            expected_return_1w DOUBLE, expected_return_1m DOUBLE, expected_return_3m DOUBLE, expected_return_1y DOUBLE,
            sizing_horizon VARCHAR,
            prob_gain DOUBLE, prob_gain_base_rate DOUBLE, confidence_source VARCHAR, growth_contribution DOUBLE,
            weight_limit VARCHAR, weight_limit_reason VARCHAR, shrinkage DOUBLE,
            PRIMARY KEY (as_of, symbol))""",
    "projections.backtest": """
        CREATE TABLE IF NOT EXISTS projections.backtest (
            strategy VARCHAR NOT NULL, window_start DATE NOT NULL, period_return DOUBLE, log_growth DOUBLE,
            turnover DOUBLE, cumulative_log_growth DOUBLE,
            period_start DATE, period_end DATE, status VARCHAR, gap_days_after INTEGER, cost DOUBLE, invested DOUBLE,
            PRIMARY KEY (strategy, window_start))""",
    "projections.backtest_summary": """
        CREATE TABLE IF NOT EXISTS projections.backtest_summary (
            strategy VARCHAR NOT NULL PRIMARY KEY, periods INTEGER, log_growth DOUBLE, annual_return DOUBLE,
            annual_volatility DOUBLE, sharpe DOUBLE, max_drawdown DOUBLE,
            years_held DOUBLE, gaps INTEGER, gap_days INTEGER, in_progress_return DOUBLE,
            sharpe_se DOUBLE, skewness DOUBLE, kurtosis DOUBLE, psr_vs_equal_weight DOUBLE, trials BIGINT,
            deflated_sharpe DOUBLE, turnover DOUBLE, annual_turnover DOUBLE, costs_paid DOUBLE, mean_invested DOUBLE,
            invested_std DOUBLE)""",
    "projections.backtest_trials": """
        CREATE TABLE IF NOT EXISTS projections.backtest_trials (
            setting VARCHAR NOT NULL, strategy VARCHAR NOT NULL, periods INTEGER, sharpe DOUBLE,
            PRIMARY KEY (setting, strategy))""",
    "projections.backtest_decisions": """
        CREATE TABLE IF NOT EXISTS projections.backtest_decisions (
            window_start DATE NOT NULL, inputs VARCHAR NOT NULL, position INTEGER NOT NULL, symbol VARCHAR NOT NULL,
            kelly_weight DOUBLE NOT NULL, cap_binding DOUBLE,
            PRIMARY KEY (window_start, symbol))""",
    "portfolio.plays": """
        CREATE TABLE IF NOT EXISTS portfolio.plays (
            play_id BIGINT NOT NULL PRIMARY KEY, symbol VARCHAR NOT NULL, shares DOUBLE NOT NULL,
            entry_price DOUBLE NOT NULL, entry_date DATE NOT NULL, note VARCHAR,
            created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL)""",
    # Per as-of day, each candidate's sized simple returns at the sizing horizon (the scenarios the weights were
    # solved on, in order) and the advice's constraints: what a rebalance solves its cost-aware target on.
    "projections.sizing_scenarios": """
        CREATE TABLE IF NOT EXISTS projections.sizing_scenarios (
            as_of DATE NOT NULL, symbol VARCHAR NOT NULL, horizon VARCHAR NOT NULL, eligible BOOLEAN NOT NULL,
            position_cap DOUBLE NOT NULL, max_total DOUBLE NOT NULL, kelly_fraction DOUBLE NOT NULL,
            simple_returns DOUBLE[] NOT NULL,
            PRIMARY KEY (as_of, symbol))""",
    "projections.scorecard": """
        CREATE TABLE IF NOT EXISTS projections.scorecard (
            as_of DATE NOT NULL, symbol VARCHAR NOT NULL, horizon VARCHAR NOT NULL, weight DOUBLE,
            p10 DOUBLE, p50 DOUBLE, p90 DOUBLE, p10_value DOUBLE, p50_value DOUBLE, p90_value DOUBLE,
            horizon_end DATE, realized_log_return DOUBLE, realized_value DOUBLE, inside_band BOOLEAN,
            outcome VARCHAR, sizing_horizon VARCHAR,
            PRIMARY KEY (as_of, symbol, horizon))""",
}
