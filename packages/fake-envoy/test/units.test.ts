// The pure pieces: the version hash, stats rendering, filter chain matching, the command
// line, and the implemented-subset parser.
import { describe, expect, it } from "@jest/globals";
import { CommandLineError, parseCommandLine } from "../src/cli.ts";
import { SpecContext } from "../src/config/spec.ts";
import { clusterSpec, listenerSpec, TCP_PROXY } from "../src/config/subset.ts";
import { buildFilterChainIndex, FilterChainError } from "../src/listeners/filter-chain-index.ts";
import { parseStatsText, renderStatsJson, renderStatsText, StatsStore } from "../src/stats/store.ts";
import { xxHash64 } from "../src/stats/xxhash64.ts";
import { TYPE } from "./support/fixtures.ts";

describe("xxHash64 (the <prefix>.version gauge)", () => {
  it("matches the reference vectors", () => {
    expect(xxHash64("").toString(16)).toBe("ef46db3751d8e999");
    expect(xxHash64("a").toString(16)).toBe("d24ec4f1a98c6e5b");
    expect(xxHash64("abc").toString(16)).toBe("44bc2cf5ad770999");
    expect(xxHash64("Nobody inspects the spammish repetition").toString(16)).toBe("fbcea83c8a378bf1");
  });
});

describe("stats", () => {
  const store = new StatsStore();
  const lds = store.scope("listener_manager.lds.");
  lds.counter("update_success").inc(2);
  lds.counter("update_rejected");
  lds.textReadout("version_text").set("v1");
  store.gauge("server.state").set(0);

  it("renders Envoy's text format: text readouts first and quoted, then counters and gauges by name", () => {
    expect(renderStatsText(store.select())).toBe(
      ['listener_manager.lds.version_text: "v1"', "listener_manager.lds.update_rejected: 0", "listener_manager.lds.update_success: 2", "server.state: 0", ""].join("\n"),
    );
  });

  it("filters by a regex found anywhere in the name, usedonly, and type", () => {
    expect(store.select({ filter: /lds\.update_/ }).map((s) => s.name)).toEqual(["listener_manager.lds.update_rejected", "listener_manager.lds.update_success"]);
    expect(store.select({ usedOnly: true, filter: /lds/ }).map((s) => s.name)).toEqual(["listener_manager.lds.version_text", "listener_manager.lds.update_success"]);
    expect(store.select({ type: "TextReadouts" }).map((s) => s.name)).toEqual(["listener_manager.lds.version_text"]);
  });

  it("renders JSON and parses text back", () => {
    expect(JSON.parse(renderStatsJson(store.select({ filter: /version_text|update_success/ })))).toEqual({
      stats: [
        { name: "listener_manager.lds.version_text", value: "v1" },
        { name: "listener_manager.lds.update_success", value: 2 },
      ],
    });
    expect(parseStatsText(renderStatsText(store.select())).get("listener_manager.lds.version_text")).toBe("v1");
  });
});

describe("filter chain index", () => {
  const chain = (name: string, serverNames?: string[], transportProtocol?: string) => ({
    name,
    filter_chain_match: { ...(serverNames ? { server_names: serverNames } : {}), ...(transportProtocol ? { transport_protocol: transportProtocol } : {}) },
  });
  const index = buildFilterChainIndex(
    "0.0.0.0:443",
    [chain("exact", ["a.example.com"]), chain("wild", ["*.example.com"]), chain("deeper", ["*.b.example.com"]), chain("any-tls", undefined, "tls")],
    { name: "fallback" },
    (c) => c.name ?? "",
  );

  it("selects exact names, then the longest wildcard, then chains without names, then the default", () => {
    expect(index.select("A.Example.com", "tls")).toBe("exact");
    expect(index.select("x.example.com", "tls")).toBe("wild");
    expect(index.select("x.b.example.com", "tls")).toBe("deeper");
    expect(index.select("other.org", "tls")).toBe("any-tls");
    expect(index.select("other.org", "raw_buffer")).toBe("fallback");
    expect(index.select("", "raw_buffer")).toBe("fallback");
  });

  it("refuses equal matches, overlapping names and partial wildcards with Envoy's messages", () => {
    const build = (chains: ReturnType<typeof chain>[]) => () => buildFilterChainIndex("0.0.0.0:443", chains, undefined, (c) => c.name);
    expect(build([chain("a", ["a.example.com"]), chain("b", ["a.example.com"])])).toThrow(
      new FilterChainError(
        `error adding listener '0.0.0.0:443': filter chain 'b' has the same matching rules defined as 'a'. duplicate matcher is: {"server_names":["a.example.com"]}`,
      ),
    );
    expect(build([chain("a", ["a.example.com", "c.example.com"]), chain("b", ["c.example.com"])])).toThrow(
      "error adding listener '0.0.0.0:443': multiple filter chains with overlapping matching rules are defined",
    );
    expect(build([chain("a", ["a*.example.com"])])).toThrow(`error adding listener '0.0.0.0:443': partial wildcards are not supported in "server_names"`);
  });
});

describe("command line", () => {
  it("takes Envoy's flags with separate or = values", () => {
    const parsed = parseCommandLine(["-c", "/etc/ktube/envoy/bootstrap.json", "--drain-time-s", "60", "--log-level", "warn", "--base-id=3", "--log-path", "/var/log/envoy.log"]);
    expect(parsed).toEqual({
      kind: "run",
      options: expect.objectContaining({ configPath: "/etc/ktube/envoy/bootstrap.json", mode: "serve", drainTimeSeconds: 60, logLevel: "warning", baseId: 3, logPath: "/var/log/envoy.log" }),
    });
    expect(parseCommandLine(["--config-path", "b.yaml", "--mode", "validate"])).toEqual({ kind: "run", options: expect.objectContaining({ mode: "validate" }) });
    expect(parseCommandLine(["--version"])).toEqual({ kind: "version" });
  });

  it("refuses unknown flags, bad values and a missing config path", () => {
    expect(() => parseCommandLine(["-c", "b.json", "--concurrency", "2"])).toThrow(new CommandLineError("Argument: --concurrency\n             Couldn't find match for argument"));
    expect(() => parseCommandLine(["-c", "b.json", "--mode", "init_only"])).toThrow(/does not meet constraint: serve\|validate/);
    expect(() => parseCommandLine(["-c", "b.json", "--log-level", "loud"])).toThrow(/Value 'loud' does not meet constraint/);
    expect(() => parseCommandLine(["-c", "b.json", "--drain-time-s", "-1"])).toThrow(/Couldn't read argument value/);
    expect(() => parseCommandLine(["-c"])).toThrow(/Missing a value/);
    expect(() => parseCommandLine([])).toThrow(/At least one of --config-path/);
  });
});

describe("implemented subset", () => {
  it("normalises proto3 JSON spellings: camelCase keys, integer strings, enum numbers, @type", () => {
    const ctx = new SpecContext();
    const parsed = listenerSpec.parse(
      {
        name: "l",
        address: { socketAddress: { address: "0.0.0.0", portValue: "443", protocol: 0 } },
        filterChains: [{ filters: [{ name: "tcp", typedConfig: { "@type": `${TYPE}${TCP_PROXY}`, statPrefix: "a", cluster: "a" } }] }],
      },
      "",
      ctx,
    );
    expect(ctx.issues).toEqual([]);
    expect(parsed).toEqual({
      name: "l",
      address: { socket_address: { address: "0.0.0.0", port_value: 443, protocol: "TCP" } },
      filter_chains: [{ filters: [{ name: "tcp", type: TCP_PROXY, config: { stat_prefix: "a", cluster: "a" } }] }],
    });
  });

  it("names every field, enum value and extension it does not implement", () => {
    const ctx = new SpecContext();
    listenerSpec.parse(
      {
        name: "l",
        per_connection_buffer_limit_bytes: 1024,
        filter_chains: [
          { filters: [{ name: "tcp", typed_config: { "@type": `${TYPE}${TCP_PROXY}`, stat_prefix: "a", cluster: "a", max_connect_attempts: 3 } }] },
          { filters: [{ name: "redis", typed_config: { "@type": `${TYPE}envoy.extensions.filters.network.redis_proxy.v3.RedisProxy` } }] },
        ],
      },
      "",
      ctx,
    );
    expect(ctx.issues.map((issue) => `${issue.kind} ${issue.path}`)).toEqual([
      "unimplemented per_connection_buffer_limit_bytes",
      "unimplemented filter_chains[0].filters[0].typed_config.max_connect_attempts",
      "unimplemented filter_chains[1].filters[0].typed_config.@type",
    ]);
    const cluster = new SpecContext();
    clusterSpec.parse({ name: "c", type: "STRICT_DNS" }, "", cluster);
    expect(cluster.issues).toEqual([
      {
        kind: "unimplemented",
        path: "type",
        message: "envoy.config.cluster.v3.Cluster.DiscoveryType STRICT_DNS is not implemented by fake-envoy (it implements STATIC)",
      },
    ]);
  });

  it("an extension in a slot of another kind is what Envoy refuses, not an unimplemented field", () => {
    const ctx = new SpecContext();
    listenerSpec.parse({ name: "l", listener_filters: [{ name: "envoy.filters.network.tcp_proxy", typed_config: { "@type": `${TYPE}${TCP_PROXY}`, stat_prefix: "a", cluster: "a" } }] }, "", ctx);
    expect(ctx.issues).toEqual([
      {
        kind: "invalid",
        path: "listener_filters[0].typed_config",
        message: `Didn't find a registered implementation for 'envoy.filters.network.tcp_proxy' with type URL: '${TCP_PROXY}'`,
      },
    ]);
  });
});
