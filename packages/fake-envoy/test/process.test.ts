// fake-envoy as a program: refusing to start, --mode validate, --version, the command line,
// shutting down, and the one-file executable a test installs as "envoy".
import { beforeAll, describe, expect, it } from "@jest/globals";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureEnvoyValidator, type JsonObject } from "@ktube/envoy-validator";
import { stringify as toYaml } from "yaml";
import { writeFakeEnvoyExecutable } from "../src/executable.ts";
import { FakeEnvoyProcess, runFakeEnvoy } from "../src/process.ts";
import { bootstrap, cds, configDir, lds, staticCluster, tcpListener, writeAtomic } from "./support/fixtures.ts";

beforeAll(async () => {
  await ensureEnvoyValidator({ log: (line) => process.stderr.write(`${line}\n`) });
}, 20 * 60_000);

/** A bootstrap in a fresh directory; `mutate` edits it before it is written. */
function withBootstrap(mutate: (b: JsonObject) => void, file = "bootstrap.json"): { dir: string; path: string; cleanup: () => void } {
  const config = configDir();
  const b = bootstrap({ dir: config.dir });
  mutate(b);
  const path = join(config.dir, file);
  writeFileSync(path, file.endsWith(".yaml") ? toYaml(b) : JSON.stringify(b));
  return { dir: config.dir, path, cleanup: config.cleanup };
}

async function expectStartFailure(b: { path: string; cleanup: () => void }, message: string): Promise<string> {
  try {
    const result = await runFakeEnvoy(["-c", b.path]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`[critical][main]`);
    expect(result.stderr).toContain(`error initializing configuration '${b.path}': ${message}`);
    return result.stderr;
  } finally {
    b.cleanup();
  }
}

describe("refusing to start", () => {
  it("exits 1 naming a bootstrap field fake-envoy does not implement", async () => {
    const stderr = await expectStartFailure(
      withBootstrap((b) => {
        b.stats_flush_interval = "5s";
      }),
      "stats_flush_interval: envoy.config.bootstrap.v3.Bootstrap.stats_flush_interval is not implemented by fake-envoy",
    );
    expect(stderr).toContain("fake-envoy does not implement this configuration");
    await expectStartFailure(
      withBootstrap((b) => {
        ((b.admin as JsonObject).address as { socket_address: JsonObject }).socket_address.ipv4_compat = true;
      }),
      "admin.address.socket_address.ipv4_compat: envoy.config.core.v3.SocketAddress.ipv4_compat is not implemented by fake-envoy",
    );
  });

  it("refuses the deprecated `path` config source and bootstraps the validator rejects", async () => {
    await expectStartFailure(
      withBootstrap((b) => {
        (b.dynamic_resources as JsonObject).lds_config = { path: "/etc/envoy/lds.json" };
      }),
      "dynamic_resources.lds_config.path: envoy.config.core.v3.ConfigSource.path is not implemented by fake-envoy (the deprecated form of a file source; use path_config_source { path, watched_directory })",
    );
    await expectStartFailure(
      withBootstrap((b) => {
        ((b.admin as JsonObject).address as { socket_address: JsonObject }).socket_address.port_value = 70000;
      }),
      "Proto constraint validation failed (admin.address.socket_address.port_value: value must be less than or equal to 65535)",
    );
    await expectStartFailure(
      withBootstrap((b) => {
        b.admin = { adress: {} };
      }),
      'Protobuf message (type envoy.config.bootstrap.v3.Bootstrap reason INVALID_ARGUMENT:admin.adress: unknown field "adress") has unknown fields',
    );
  });

  it("exits 1 when the admin port is taken or a watched directory is missing", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      await expectStartFailure(
        withBootstrap((b) => {
          ((b.admin as JsonObject).address as { socket_address: JsonObject }).socket_address.port_value = port;
        }),
        `cannot bind '127.0.0.1:${port}': Address already in use`,
      );
    } finally {
      blocker.close();
    }
    await expectStartFailure(
      withBootstrap((b) => {
        (b.dynamic_resources as JsonObject).cds_config = { path_config_source: { path: "/nonexistent/cds.json", watched_directory: { path: "/nonexistent" } } };
      }),
      "unable to add filesystem watch for file /nonexistent/: No such file or directory",
    );
  });

  it("refuses unknown flags with a parse error and exit 1", async () => {
    const result = await runFakeEnvoy(["-c", "/etc/ktube/envoy/bootstrap.json", "--concurrency", "2"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("PARSE ERROR: Argument: --concurrency\n             Couldn't find match for argument");
    expect(result.stderr).toContain("Brief USAGE:");
  });

  it("prints Envoy's version line", async () => {
    const result = await runFakeEnvoy(["--version"]);
    expect(result).toMatchObject({ code: 0 });
    expect(result.stdout).toMatch(/^\nenvoy {2}version: fake-envoy\/\d+\.\d+\.\d+\/Clean\/RELEASE\/BoringSSL\n\n$/);
  });
});

describe("--mode validate", () => {
  it("accepts a bootstrap (JSON or YAML) with its LDS/CDS files, and says so as Envoy does", async () => {
    for (const file of ["bootstrap.json", "bootstrap.yaml"]) {
      const b = withBootstrap(() => {}, file);
      try {
        writeAtomic(join(b.dir, "cds.json"), cds("v1", [staticCluster("a")]));
        writeAtomic(join(b.dir, "lds.json"), lds("v1", [tcpListener("l", 443, [{ name: "a", serverNames: ["a.example.com"], cluster: "a" }])]));
        const result = await runFakeEnvoy(["--mode", "validate", "-c", b.path]);
        expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 0, stdout: `configuration '${b.path}' OK\n` });
      } finally {
        b.cleanup();
      }
    }
  });

  it("fails on a bad bootstrap, and on LDS/CDS files that would be rejected or are missing", async () => {
    await (async () => {
      const b = withBootstrap((x) => {
        x.watchdogs = {};
      });
      try {
        const result = await runFakeEnvoy(["--mode", "validate", "-c", b.path]);
        expect(result.code).toBe(1);
        expect(result.stderr).toContain(`error initializing configuration '${b.path}': watchdogs: envoy.config.bootstrap.v3.Bootstrap.watchdogs is not implemented by fake-envoy`);
        expect(result.stdout).toBe("");
      } finally {
        b.cleanup();
      }
    })();
    const b = withBootstrap(() => {});
    try {
      writeAtomic(join(b.dir, "lds.json"), lds("v1", [tcpListener("l", 443, [{ name: "a", cluster: "a", proxy: { stat_prefx: "a" } }])]));
      rmSync(join(b.dir, "cds.json"));
      const result = await runFakeEnvoy(["--mode", "validate", "-c", b.path]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`cds (${join(b.dir, "cds.json")}): Invalid path: ${join(b.dir, "cds.json")}`);
      expect(result.stderr).toContain(`lds (${join(b.dir, "lds.json")}): Protobuf message (type envoy.service.discovery.v3.DiscoveryResponse`);
    } finally {
      b.cleanup();
    }
  });
});

describe("shutting down", () => {
  it("exits 0 promptly on SIGTERM", async () => {
    const config = configDir();
    try {
      const envoy = await FakeEnvoyProcess.start({ args: ["-c", config.bootstrapPath] });
      const started = Date.now();
      expect(await envoy.stop("SIGTERM")).toEqual({ code: 0, signal: null });
      expect(Date.now() - started).toBeLessThan(2000);
      expect(envoy.stderr).toContain("caught ENVOY_SIGTERM");
    } finally {
      config.cleanup();
    }
  });

  it("exits 0 on POST /quitquitquit, and refuses it as a GET", async () => {
    const config = configDir();
    try {
      const envoy = await FakeEnvoyProcess.start({ args: ["-c", config.bootstrapPath] });
      expect(await envoy.admin("/quitquitquit")).toEqual({ status: 405, body: "Method GET not allowed, POST required." });
      expect(await envoy.admin("/quitquitquit", "POST")).toEqual({ status: 200, body: "OK\n" });
      expect(await envoy.waitForExit()).toEqual({ code: 0, signal: null });
    } finally {
      config.cleanup();
    }
  });
});

describe("as an installed binary", () => {
  it("writeFakeEnvoyExecutable writes one file with absolute paths whose SHA-256 a test can pin, and it runs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fake-envoy-bin-"));
    const config = configDir();
    try {
      const written = await writeFakeEnvoyExecutable(join(dir, "envoy"));
      const bytes = readFileSync(written.path);
      expect(written.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
      expect(bytes.toString("utf8")).toMatch(/^#!\/bin\/sh\n/);
      expect((await writeFakeEnvoyExecutable(join(dir, "envoy-again"))).sha256).toBe(written.sha256);

      expect(execFileSync(written.path, ["--version"], { encoding: "utf8" })).toContain("envoy  version: fake-envoy/");
      const validate = await runFakeEnvoy(["--mode", "validate", "-c", config.bootstrapPath], { executable: written.path });
      expect(validate.stdout).toBe(`configuration '${config.bootstrapPath}' OK\n`);
      const envoy = await FakeEnvoyProcess.start({ executable: written.path, args: ["-c", config.bootstrapPath, "--drain-time-s", "60", "--log-level", "info"] });
      expect((await envoy.stats("^listener_manager\\.lds\\.version_text$")).get("listener_manager.lds.version_text")).toBe("");
      expect(await envoy.stop()).toEqual({ code: 0, signal: null });
    } finally {
      rmSync(dir, { recursive: true, force: true });
      config.cleanup();
    }
  });

  it("the package's bin entry runs as fake-envoy", () => {
    const bin = join(import.meta.dirname, "..", "bin", "fake-envoy");
    expect(execFileSync(bin, ["--version"], { encoding: "utf8" })).toContain("envoy  version: fake-envoy/");
  });
});
