"use client";
// "Why": what one position's weight rests on — the members' forecasts and their spread, the ensemble's skill, the
// prior and the sizing mean, the probability of a gain and its base rate, and what limits the weight. Fetched from
// /api/why when the disclosure is first opened.
import { useState } from "react";
import { ErrorLine } from "@/components/Notice";
import { api, Freshness, pct } from "@/components/api";

export type WhyLine = {
  symbol: string; as_of: string; horizon: string; window_start: string | null;
  members: { model: string; mean: number; p10: number | null; p90: number | null }[];
  member_spread: number | null; ensemble_mean: number | null; skill: number | null; skill_measure: string;
  prior: number | null; sizing_mean: number | null; mean_uncertainty: number | null; shrinkage: number | null;
  expected_return: number | null; prob_gain: number | null; prob_gain_base_rate: number | null;
  confidence: number | null; confidence_source: string | null; confidence_label: string | null;
  weight: number; kelly_weight: number; weight_limit: string | null; weight_limit_reason: string | null;
};
export type WhyResponse = { as_of: string; lines: WhyLine[]; freshness: Freshness };

// Log returns as signed percentages; a missing figure as a dash.
const logPct = (v: number | null | undefined) => (v == null ? "—" : pct(v));
const share = (v: number | null | undefined) => (v == null ? "—" : pct(v, 0).replace("+", ""));

export default function Why({ symbol, asOf }: { symbol: string; asOf?: string | null }) {
  const [line, setLine] = useState<WhyLine | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function load(open: boolean) {
    if (!open || line) return;
    try {
      const query = `symbol=${encodeURIComponent(symbol)}${asOf ? `&as_of=${asOf}` : ""}`;
      setLine((await api<WhyResponse>(`/api/why?${query}`)).lines[0]); setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  return (
    <details className="why small" data-testid="why" data-symbol={symbol}
             onToggle={(e) => load((e.currentTarget as HTMLDetailsElement).open)}>
      <summary>Why</summary>
      <ErrorLine message={error} />
      {line ? (
        <div data-testid="why-body" data-limit={line.weight_limit ?? ""} data-skill={line.skill ?? ""}
             data-spread={line.member_spread ?? ""} data-prob-gain={line.prob_gain ?? ""}>
          <table data-testid="why-members">
            <thead><tr><th className="left">Model ({line.horizon})</th><th>Mean</th><th>P10</th><th>P90</th></tr></thead>
            <tbody>{line.members.map((m) => (
              <tr key={m.model} data-testid="why-member" data-model={m.model} data-mean={m.mean}>
                <td className="left">{m.model}</td><td>{logPct(m.mean)}</td><td>{logPct(m.p10)}</td><td>{logPct(m.p90)}</td>
              </tr>))}
            </tbody>
          </table>
          <ul>
            <li data-testid="why-spread">Spread of the members&apos; means: {logPct(line.member_spread)} (log return)</li>
            <li data-testid="why-skill" title={line.skill_measure}>Skill at {line.horizon}: {line.skill == null ? "not measured" : pct(line.skill, 1)} (CRPS against the baseline)</li>
            <li>Prior {logPct(line.prior)} · sizing mean {logPct(line.sizing_mean)} · shrinkage {line.shrinkage == null ? "—" : line.shrinkage.toFixed(2)} · expected return bet on {logPct(line.expected_return)}</li>
            <li data-testid="why-gain">Chance of a gain: calibrated {share(line.prob_gain)}, base rate {share(line.prob_gain_base_rate)}; shown: {share(line.confidence)} ({line.confidence_label ?? "unlabelled"})</li>
            <li data-testid="why-limit">Weight {share(line.weight)}, limited by <strong>{line.weight_limit ?? "—"}</strong>{line.weight_limit_reason ? `: ${line.weight_limit_reason}` : ""}</li>
          </ul>
        </div>
      ) : null}
    </details>
  );
}
