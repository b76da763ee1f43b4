import { readFileSync } from 'node:fs';

/*
 * The shipped Grafana dashboard, read as the deploy checks and the real
 * Prometheus test use it: its panels, their PromQL, and that PromQL with
 * Grafana's variables filled in.
 */

export interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly gridPos: { x: number; y: number; w: number; h: number };
  readonly datasource?: { uid: string };
  readonly targets?: { expr: string; datasource?: { uid: string } }[];
}

export const dashboard = JSON.parse(readFileSync('deploy/grafana/dashboards/nest-async-api.json', 'utf8'));
export const panels = dashboard.panels as Panel[];
export const queryPanels = panels.filter((p) => p.type !== 'row');
/** Every query of every panel, with the panel it draws. */
export const queries = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
export const exprs = queries.map((q) => q.expr);
export const instanceVariable = (dashboard.templating.list as { name: string; definition: string }[]).find(
  (v) => v.name === 'instance',
);

/** Grafana's interval variables, as one fixed range. */
const INTERVALS = ['$__rate_interval', '$__interval', '$__range'];

/**
 * The expression as plain PromQL: interval variables become `1m`, dashboard
 * variables the given values (`$instance` is all instances unless told).
 * Throws on a variable left over, so a new one cannot go unnoticed.
 */
export function concrete(expr: string, variables: Readonly<Record<string, string>> = {}): string {
  let promql = expr;
  for (const name of INTERVALS) promql = promql.replaceAll(name, '1m');
  for (const [name, value] of Object.entries({ instance: '.*', ...variables })) {
    promql = promql.replaceAll(`\${${name}}`, value).replaceAll(`$${name}`, value);
  }
  const left = /\$\{?\w+/.exec(promql);
  if (left !== null) throw new Error(`unknown Grafana variable ${left[0]} in ${expr}`);
  return promql;
}
