// Envoy's stats: counters, gauges and text readouts by their full dotted name, rendered as
// the admin's `/stats` renders them.
//
// Text format (the default): one `name: value` line per stat, text readouts with the value
// in double quotes (`listener_manager.lds.version_text: "v3"`); text readouts first, then
// counters and gauges together, each group sorted by name. JSON (`?format=json`):
// `{"stats": [{"name": ..., "value": ...}, ...]}`, text readouts' values as strings.
// Histograms are not kept (Envoy's `update_duration` histogram is absent).

export type StatType = "Counters" | "Gauges" | "TextReadouts" | "Histograms" | "All";

interface StatBase {
  readonly name: string;
  /** Set once the stat was written, as Envoy's `usedonly` filter sees it. */
  used: boolean;
}

export class Counter implements StatBase {
  readonly name: string;
  used = false;
  private current = 0n;
  constructor(name: string) {
    this.name = name;
  }
  inc(by = 1): void {
    this.current += BigInt(by);
    this.used = true;
  }
  value(): bigint {
    return this.current;
  }
}

export class Gauge implements StatBase {
  readonly name: string;
  used = false;
  private current = 0n;
  constructor(name: string) {
    this.name = name;
  }
  set(value: number | bigint): void {
    this.current = BigInt(value);
    this.used = true;
  }
  add(by = 1): void {
    this.set(this.current + BigInt(by));
  }
  sub(by = 1): void {
    this.set(this.current - BigInt(by));
  }
  value(): bigint {
    return this.current;
  }
}

export class TextReadout implements StatBase {
  readonly name: string;
  used = false;
  private current = "";
  constructor(name: string) {
    this.name = name;
  }
  set(value: string): void {
    this.current = value;
    this.used = true;
  }
  value(): string {
    return this.current;
  }
}

export interface StatsQuery {
  /** Kept when the regex matches anywhere in the name (RE2 PartialMatch; here a JS RegExp). */
  filter?: RegExp;
  usedOnly?: boolean;
  type?: StatType;
}

export interface StatEntry {
  name: string;
  kind: "counter" | "gauge" | "text";
  value: bigint | string;
}

/** A stat name prefix, such as Envoy's `Stats::Scope` (`listener_manager.lds.`). */
export interface StatsScope {
  counter(name: string): Counter;
  gauge(name: string): Gauge;
  textReadout(name: string): TextReadout;
  scope(prefix: string): StatsScope;
}

export class StatsStore implements StatsScope {
  private readonly counters = new Map<string, Counter>();
  private readonly gauges = new Map<string, Gauge>();
  private readonly textReadouts = new Map<string, TextReadout>();

  counter(name: string): Counter {
    let stat = this.counters.get(name);
    if (!stat) this.counters.set(name, (stat = new Counter(name)));
    return stat;
  }

  gauge(name: string): Gauge {
    let stat = this.gauges.get(name);
    if (!stat) this.gauges.set(name, (stat = new Gauge(name)));
    return stat;
  }

  textReadout(name: string): TextReadout {
    let stat = this.textReadouts.get(name);
    if (!stat) this.textReadouts.set(name, (stat = new TextReadout(name)));
    return stat;
  }

  scope(prefix: string): StatsScope {
    return prefixedScope(this, prefix);
  }

  /** The stats a query selects, in the order `/stats` prints them. */
  select(query: StatsQuery = {}): StatEntry[] {
    const type = query.type ?? "All";
    const keep = (stat: StatBase): boolean => (!query.usedOnly || stat.used) && (!query.filter || query.filter.test(stat.name));
    const byName = (a: StatEntry, b: StatEntry): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    const texts: StatEntry[] =
      type === "All" || type === "TextReadouts"
        ? [...this.textReadouts.values()].filter(keep).map((s) => ({ name: s.name, kind: "text" as const, value: s.value() }))
        : [];
    const numbers: StatEntry[] = [
      ...(type === "All" || type === "Counters"
        ? [...this.counters.values()].filter(keep).map((s) => ({ name: s.name, kind: "counter" as const, value: s.value() }))
        : []),
      ...(type === "All" || type === "Gauges"
        ? [...this.gauges.values()].filter(keep).map((s) => ({ name: s.name, kind: "gauge" as const, value: s.value() }))
        : []),
    ];
    return [...texts.sort(byName), ...numbers.sort(byName)];
  }
}

function prefixedScope(store: StatsStore, prefix: string): StatsScope {
  return {
    counter: (name) => store.counter(prefix + name),
    gauge: (name) => store.gauge(prefix + name),
    textReadout: (name) => store.textReadout(prefix + name),
    scope: (more) => prefixedScope(store, prefix + more),
  };
}

/** `/stats` text: `name: value`, text readouts quoted (Envoy does not escape the value). */
export function renderStatsText(entries: readonly StatEntry[]): string {
  return entries.map((entry) => (entry.kind === "text" ? `${entry.name}: "${String(entry.value)}"` : `${entry.name}: ${entry.value}`)).join("\n") + (entries.length ? "\n" : "");
}

/** `/stats?format=json`. Counter and gauge values are JSON numbers (they fit in 2^53 here). */
export function renderStatsJson(entries: readonly StatEntry[]): string {
  const stats = entries.map((entry) => ({ name: entry.name, value: entry.kind === "text" ? String(entry.value) : Number(entry.value) }));
  return `${JSON.stringify({ stats }, null, 1)}\n`;
}

/** Parses `/stats` text back into name -> value (text readouts unquoted): for tests and harnesses. */
export function parseStatsText(text: string): Map<string, string> {
  const stats = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^([^:\s]+): (.*)$/.exec(line);
    if (!match) continue;
    const value = match[2]!;
    stats.set(match[1]!, value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value);
  }
  return stats;
}
