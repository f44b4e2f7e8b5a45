"use client";
import { age, Quote } from "./api";

const LABELS: Record<string, string> = { polygon: "Polygon", coinbase: "Coinbase", last_close: "Last close" };

// Where a price comes from and how old it is: green when live, amber when delayed, grey when it is a close.
export default function LiveBadge({ quote }: { quote: Quote | null }) {
  if (!quote) return <span className="badge badge-off">no price</span>;
  const tone = quote.source === "last_close" ? "badge-close" : quote.stale || quote.delayed ? "badge-delayed" : "badge-live";
  return (
    <span className={`badge ${tone}`} title={quote.note || undefined} data-testid="live-badge">
      {LABELS[quote.source] ?? quote.source} · {age(quote.age_seconds)} old{quote.delayed && quote.source !== "last_close" ? " · delayed" : ""}
    </span>
  );
}
