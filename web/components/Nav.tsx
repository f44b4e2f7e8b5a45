"use client";
import Link from "next/link";
import { usePathname } from "next/navigation";

const PAGES = [
  { href: "/", label: "Projector" },
  { href: "/backtest/", label: "Backtest" },
  { href: "/plays/", label: "My plays" },
  { href: "/compare/", label: "Compare" },
];

export default function Nav() {
  const path = usePathname();
  return (
    <header className="topbar">
      <div className="brand"><span className="logo">◆</span> quant<span className="brand-dim">_assets</span></div>
      <nav>
        {PAGES.map((p) => (
          <Link key={p.href} href={p.href} className={path === p.href || (p.href !== "/" && path?.startsWith(p.href.slice(0, -1))) ? "active" : ""}>
            {p.label}
          </Link>
        ))}
      </nav>
    </header>
  );
}
