import { num, pct } from "@/components/api";

type Row = Record<string, number | string | null>;

const value = (r: Row, key: string) => (typeof r[key] === "number" ? (r[key] as number) : null);

/** The decision backtest's statistics per strategy: the Sharpe ratio with its standard error, the probability that
 * it beats equal weight's (probabilistic Sharpe ratio), the deflated Sharpe ratio over the settings tried, the
 * drawdown, turnover, costs and the share invested. */
export default function BacktestStatistics({ rows, names }: { rows: Row[]; names: Record<string, string> }) {
  const trials = rows.length ? value(rows[0], "trials") : null;
  return (
    <div className="card">
      <h2>Statistics</h2>
      <table data-testid="statistics">
        <thead><tr><th>Strategy</th><th>Sharpe ± s.e.</th><th>P(Sharpe &gt; equal weight&apos;s)</th><th>Deflated Sharpe</th>
          <th>Max drawdown</th><th>Turnover / year</th><th>Costs paid</th><th>Invested (mean ± sd)</th></tr></thead>
        <tbody>{rows.map((r) => (
          <tr key={String(r.strategy)}><td className="sym">{names[String(r.strategy)] ?? r.strategy}</td>
            <td>{num(value(r, "sharpe"), 2)} ± {num(value(r, "sharpe_se"), 2)}</td>
            <td>{pct(value(r, "psr_vs_equal_weight")).replace("+", "")}</td>
            <td>{pct(value(r, "deflated_sharpe")).replace("+", "")}</td>
            <td>{pct(value(r, "max_drawdown"))}</td>
            <td>{num(value(r, "annual_turnover"), 2)}×</td>
            <td>{pct(value(r, "costs_paid"), 2).replace("+", "")}</td>
            <td>{pct(value(r, "mean_invested"), 0).replace("+", "")} ± {pct(value(r, "invested_std"), 0).replace("+", "")}</td></tr>))}
        </tbody>
      </table>
      <p className="subtitle" data-testid="statistics-note">
        Positions enter at each symbol&apos;s first close after the decision. Sharpe ratios are annual, their standard
        errors account for skewness and kurtosis (Mertens); the probability of beating equal weight is the probabilistic
        Sharpe ratio (Bailey &amp; López de Prado); the deflated Sharpe ratio counts the {trials ?? "—"} strategies and
        settings tried.
      </p>
    </div>
  );
}
