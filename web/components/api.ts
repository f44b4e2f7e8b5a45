// Typed access to the FastAPI backend (same origin) and the number formats every page shares.

export type Quote = {
  symbol: string; price: number; source: string; timestamp: string; age_seconds: number;
  delayed: boolean; stale: boolean; note: string;
};
export type Freshness = { read_at: string; warehouse_modified_at: string | null; served_from_cache: boolean; note: string };
export type Band = { horizon: string; p10: number; p50: number; p90: number; price_p10?: number | null; price_p50?: number | null; price_p90?: number | null };
export type ProjectorLine = {
  rank: number | null; symbol: string; asset_class: string | null; side: string | null;
  // The probability of a gain over the sizing horizon; confidence_label says whether it is calibrated or the base rate.
  confidence: number | null; confidence_source: string | null; confidence_label: string | null;
  weight: number; dollars: number; shares: number | null; last_price: number | null; live_price: number | null;
  expected_return: number | null; quote: Quote | null; bands: Band[];
};
export type ProjectorResponse = { amount: number; as_of: string; lines: ProjectorLine[]; synthetic_symbols: string[]; freshness: Freshness };
export type SeriesPoint = { window_start: string; period_return: number; growth: number; drawdown: number };
export type BacktestResponse = {
  series: Record<string, SeriesPoint[]>; summary: Record<string, number | string | null>[];
  open_period: { since: string; half_kelly_return: number; full_kelly_return: number; quotes: Quote[] } | null;
  freshness: Freshness;
};
export type Play = {
  play_id: number; symbol: string; shares: number; entry_price: number; entry_date: string; note: string | null;
  price: number | null; value: number | null; cost: number | null; pnl: number | null; pnl_pct: number | null;
  quote: Quote | null; band: { as_of: string; horizon: string; p10: number; p50: number; p90: number; where: string; position: number } | null;
};
export type PlaysResponse = { plays: Play[]; total_value: number; total_cost: number; total_pnl: number; freshness: Freshness };
export type CompareSymbol = {
  symbol: string; asset_class: string; synthetic: boolean; last_close: number; last_close_date: string; quote: Quote | null;
  confidence: number | null; bands: { horizon: string; p10: number; p25: number; p50: number; p75: number; p90: number; prob_loss: number | null }[];
  agreement: Record<string, { share: number; models: number }>;
  history: { date: string; value: number }[];
  track_record: { date: string; q10: number; q50: number; q90: number; realized: number }[];
};
export type CompareResponse = { symbols: CompareSymbol[]; freshness: Freshness };
export type Health = {
  status: string; projections_as_of: string | null; market_last_date: string | null; symbols: string[];
  live: { enabled: boolean; sources: Record<string, string> }; writes_require_token: boolean;
};

export class ApiError extends Error {}

const TOKEN_KEY = "quantApiToken";

export function setToken(token: string) {
  window.localStorage.setItem(TOKEN_KEY, token);
}

export async function api<T>(path: string, init?: RequestInit): Promise<T> {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  const token = typeof window !== "undefined" ? window.localStorage.getItem(TOKEN_KEY) : null;
  if (token) headers["X-API-Token"] = token;
  let response: Response;
  try {
    response = await fetch(path, { ...init, headers });
  } catch {
    throw new ApiError("The server did not answer; is `make serve` running?");
  }
  if (response.status === 204) return undefined as T;
  const body = await response.json().catch(() => ({ detail: `HTTP ${response.status}` }));
  if (!response.ok) throw new ApiError(body.detail ?? `HTTP ${response.status}`);
  return body as T;
}

export const HORIZON_NAMES: Record<string, string> = { "1w": "1 week", "1m": "1 month", "3m": "3 months", "1y": "1 year" };

export const usd = (v: number | null | undefined, digits = 2) =>
  v == null ? "—" : v.toLocaleString("en-US", { style: "currency", currency: "USD", minimumFractionDigits: digits, maximumFractionDigits: digits });
export const pct = (v: number | null | undefined, digits = 1) => {
  if (v == null) return "—";
  const text = (v * 100).toFixed(digits);
  // What rounds to zero reads 0.0%, not +0.0% or -0.0%.
  return Number(text) === 0 ? `${(0).toFixed(digits)}%` : `${v > 0 ? "+" : ""}${text}%`;
};
export const num = (v: number | null | undefined, digits = 4) =>
  v == null ? "—" : v.toLocaleString("en-US", { maximumFractionDigits: digits });

export function age(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400).toLocaleString("en-US")} days`;
}

export type RebalanceLine = {
  symbol: string; asset_class: string | null; covered: boolean; shares_held: number; last_price: number | null;
  value: number | null; current_weight: number | null; advised_weight: number | null; target_weight: number | null;
  drift: number | null; side: string; shares: number; dollars: number; cost: number; shares_after: number;
  weight_after: number | null; note: string;
};
export type RebalanceTerms = { cost_bp: number; min_fee: number; min_trade: number; tolerance: number; turnover_cap: number; fractional_shares: boolean };
export type RebalanceResponse = {
  summary: {
    as_of: string; horizon: string; cash_added: number; book_value: number; total: number; cash_left: number;
    total_cost: number; expected_growth_gained: number; turnover: number; target_turnover: number;
    turnover_cap_binds: boolean; uncovered_symbols: string[]; terms: RebalanceTerms;
  };
  lines: RebalanceLine[]; freshness: Freshness;
};
export type Alert = { kind: string; symbol: string; day: string; advice_as_of: string; horizon: string | null; message: string };
export type AlertsResponse = { tolerance: number; alerts: Alert[] };
