"use client";
import { Freshness } from "./api";

// The sample's simulated crypto is said to be synthetic on every page that shows it.
export function SyntheticNotice({ symbols }: { symbols: string[] }) {
  if (!symbols.length) return null;
  return (
    <div className="notice" data-testid="synthetic-notice">
      <strong>Synthetic data:</strong> {symbols.join(" and ")} {symbols.length > 1 ? "are" : "is"} simulated by the offline
      sample (a seeded GARCH path anchored to late-2022 price levels), not real market history.
    </div>
  );
}

export function FreshnessLine({ freshness, asOf }: { freshness: Freshness; asOf?: string }) {
  return (
    <p className="freshness">
      {asOf ? <>Advice as of <strong>{asOf}</strong> · </> : null}
      read {new Date(freshness.read_at).toLocaleTimeString()}
      {freshness.served_from_cache ? <> · <span className="warn">{freshness.note}</span></> : null}
    </p>
  );
}

export function ErrorLine({ message }: { message: string | null }) {
  return message ? <p className="error" role="alert" data-testid="error">{message}</p> : null;
}
