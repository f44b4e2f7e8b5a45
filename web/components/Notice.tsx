"use client";
import { useState } from "react";
import { Freshness, setToken } from "./api";

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

// A refusal for want of QUANT_API_TOKEN asks for it on whichever page met it; by default the page then reloads with it.
export function ErrorLine({ message, onToken = () => window.location.reload() }: { message: string | null; onToken?: () => void }) {
  const [token, setTokenText] = useState("");
  if (!message) return null;
  return (
    <>
      <p className="error" role="alert" data-testid="error">{message}</p>
      {message.includes("QUANT_API_TOKEN") ? (
        <form className="inline" style={{ marginTop: 10 }} onSubmit={(e) => { e.preventDefault(); setToken(token); onToken(); }}>
          <label>API token<input type="password" data-testid="api-token" value={token} onChange={(e) => setTokenText(e.target.value)} /></label>
          <button type="submit" className="ghost" data-testid="use-token">Use token</button>
        </form>
      ) : null}
    </>
  );
}
