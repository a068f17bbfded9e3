"""Reports: where the work stands and how fast it moves (README "Reports").

Layers (import-linter contract `stories-reports-layers`): `dashboard` (the static export)
→ `charts` (server-side SVG) → `figures` (each report's numbers, as plain dicts) →
`selectors` (the database reads: aggregations over status_history, the only raw SQL)
→ `params` (time zone and date range)."""
