// The generated CRDs, installed in a real API server (packages/testenv).
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { ApiextensionsV1Api, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import { createTestNamespace, deleteTestNamespace, kubectl, testKubeConfig } from "@ktube/testenv";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { TunnelBinding, TunnelProvider, Tunnel, KINDS } from "../src/index.ts";
import { ALLOWED_UPDATE_CASES, CREATE_CASES, toYaml, UPDATE_CASES } from "./malformed.ts";

/** A valid Envoy pin (every edge provider needs one). */
const PINNED_ENVOY = { version: "1.36.2", sha256: "a".repeat(64), url: "https://example.com/envoy" };

const EXAMPLES = join(import.meta.dirname, "..", "..", "..", "examples");
const GROUP = "ktube.dev";
const VERSION = "v1alpha1";

let kc: KubeConfig;
let ns: string;

beforeAll(async () => {
  kc = testKubeConfig();
  ns = await createTestNamespace(kc, "api");
});
afterAll(async () => {
  await deleteTestNamespace(kc, ns);
});

/** kubectl with the default namespace set to this file's namespace. */
const k = (args: string[], input?: string) => kubectl(["-n", ns, ...args], input);

describe("CRDs", () => {
  it("are installed and Established, with short names and the ktube category", async () => {
    const api = kc.makeApiClient(ApiextensionsV1Api);
    for (const def of KINDS) {
      const crd = await api.readCustomResourceDefinition({ name: `${def.plural}.${GROUP}` });
      expect(crd.status?.conditions?.find((c) => c.type === "Established")?.status).toBe("True");
      expect(crd.spec.names.shortNames).toEqual(def.shortNames);
      expect(crd.spec.names.categories).toContain("ktube");
    }
    const { stdout } = await k(["api-resources", "--api-group=ktube.dev", "--no-headers"]);
    expect(stdout).toMatch(/tunnelbindings\s+tb\s+ktube\.dev\/v1alpha1\s+true\s+TunnelBinding/);
    expect(stdout).toMatch(/tunnelproviders\s+tp\s+ktube\.dev\/v1alpha1\s+false\s+TunnelProvider/);
    expect(stdout).toMatch(/tunnels\s+tun\s+ktube\.dev\/v1alpha1\s+true\s+Tunnel/);
  });
});

describe("example manifests", () => {
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith(".yaml"));

  it("exist for every provider type", () => {
    const types = new Set(
      files.flatMap((f) => docs(f).filter((d) => d.kind === "TunnelProvider").map((d) => (d.spec as { type: string }).type)),
    );
    expect([...types].sort()).toEqual(["cloudflare", "devtunnels", "edge", "ngrok"]);
  });

  it.each(files)("%s is accepted by the API server and parses with the zod schemas", async (file) => {
    const namespaces = new Set(docs(file).map((d) => (d.metadata as { namespace?: string }).namespace).filter(Boolean));
    for (const name of namespaces) await kubectl(["create", "namespace", name!]);
    const result = await kubectl(["apply", "--server-side", "--field-manager=examples-test", "-f", join(EXAMPLES, file)]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    for (const doc of docs(file)) {
      const schema = { TunnelProvider, Tunnel, TunnelBinding }[doc.kind as "Tunnel"];
      const live = await kubectl(["get", `${String(doc.kind).toLowerCase()}.ktube.dev`, ...nameArgs(doc), "-o", "json"]);
      expect(schema.safeParse(JSON.parse(live.stdout)).error).toBeUndefined();
    }
  });

  it("get the defaults the schema declares", async () => {
    await kubectl(["create", "namespace", "demo"]);
    await kubectl(["apply", "--server-side", "--field-manager=examples-test", "-f", join(EXAMPLES, "cloudflare-quick.yaml")]);
    const tb = JSON.parse((await kubectl(["-n", "demo", "get", "tb", "whoami", "-o", "json"])).stdout);
    expect(tb.spec.routes[0].protocol).toBe("HTTP");
    const tun = JSON.parse((await kubectl(["-n", "demo", "get", "tun", "dev", "-o", "json"])).stdout);
    expect(tun.spec.allowedBindings).toEqual({ namespaces: { from: "Same" } });
  });
});

describe("admission rejects malformed objects with a message a person can act on", () => {
  it("has a table of at least 25 cases", () => {
    expect(CREATE_CASES.length + UPDATE_CASES.length).toBeGreaterThanOrEqual(25);
  });

  it.each(CREATE_CASES.map((c) => [c.what, c] as const))("%s", async (_what, c) => {
    const result = await k(["create", "--dry-run=server", "--validate=strict", "-f", "-"], toYaml(c.object));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(c.message);
  });

  // Before and after are applied by one field manager, so a field missing from `after`
  // is removed from the object, as it is when a person edits and re-applies a manifest.
  const apply = (object: Record<string, unknown>, ...flags: string[]) =>
    k(["apply", "--server-side", "--field-manager=malformed-test", ...flags, "-f", "-"], toYaml(object));

  it.each(UPDATE_CASES.map((c) => [c.what, c] as const))("%s", async (_what, c) => {
    expect((await apply(c.before)).code).toBe(0);
    const result = await apply(c.after, "--dry-run=server");
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(c.message);
  });

  it.each(ALLOWED_UPDATE_CASES.map((c) => [c.what, c] as const))("still allows: %s", async (_what, c) => {
    expect((await apply(c.before)).code).toBe(0);
    const result = await apply(c.after);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const live = JSON.parse((await k(["get", "tun", String((c.after.metadata as { name: string }).name), "-o", "json"])).stdout);
    expect(live.spec).toMatchObject(c.after.spec as object);
  });
});

describe("status subresource", () => {
  it("bumps generation on spec changes and not on status writes", async () => {
    const api = kc.makeApiClient(CustomObjectsApi);
    const body = {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: "TunnelBinding",
      metadata: { name: "status-test" },
      spec: { tunnelRef: { name: "home" }, routes: [{ name: "web", service: { name: "web", port: 80 } }] },
    };
    const ref = { group: GROUP, version: VERSION, namespace: ns, plural: "tunnelbindings", name: "status-test" };
    const created = (await api.createNamespacedCustomObject({ ...ref, body })) as { metadata: { generation: number } };
    expect(created.metadata.generation).toBe(1);

    const status = { observedGeneration: 1, routes: [{ name: "web", ready: true, url: "https://x.example.com/" }] };
    const afterStatus = (await api.patchNamespacedCustomObjectStatus(
      { ...ref, body: [{ op: "add", path: "/status", value: status }] },
    )) as { metadata: { generation: number }; status: unknown };
    expect(afterStatus.metadata.generation).toBe(1);
    expect(afterStatus.status).toEqual(status);

    // Status sent through the main resource is ignored; spec sent through /status is ignored.
    const viaMain = (await api.patchNamespacedCustomObject({
      ...ref,
      body: [
        { op: "replace", path: "/spec/routes/0/service/port", value: 8080 },
        { op: "replace", path: "/status/observedGeneration", value: 99 },
      ],
    })) as { metadata: { generation: number }; status: { observedGeneration: number } };
    expect(viaMain.metadata.generation).toBe(2);
    expect(viaMain.status.observedGeneration).toBe(1);
  });
});

describe("Tunnel status", () => {
  it("keeps tunnelId and adopted (the schema declares them, so the API server does not prune them)", async () => {
    const api = kc.makeApiClient(CustomObjectsApi);
    const ref = { group: GROUP, version: VERSION, namespace: ns, plural: "tunnels", name: "adopted-status" };
    const body = {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: "Tunnel",
      metadata: { name: "adopted-status" },
      spec: { providerRef: { name: "p" }, cloudflare: { existingTunnelId: "6ff42ae2-765d-4adf-8112-31c55c1551ef" } },
    };
    await api.createNamespacedCustomObject({ ...ref, body });
    const status = { tunnelId: "6ff42ae2-765d-4adf-8112-31c55c1551ef", adopted: true };
    const written = (await api.patchNamespacedCustomObjectStatus({ ...ref, body: [{ op: "add", path: "/status", value: status }] })) as unknown;
    expect(Tunnel.parse(written).status).toEqual(status);
  });
});

describe("kubectl", () => {
  it("shows the printer columns of every kind", async () => {
    await k(["apply", "--server-side", "-f", "-"], toYaml({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: "Tunnel",
      metadata: { name: "printer" },
      spec: { providerRef: { name: "printer-provider" } },
    }));
    await kubectl(["apply", "--server-side", "-f", "-"], toYaml({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: "TunnelProvider",
      metadata: { name: "printer-provider" },
      spec: { type: "edge", edge: { sshSecretRef: { name: "vps-ssh" }, envoy: PINNED_ENVOY } },
    }));
    const tb = await k(["get", "tb"]);
    expect(tb.stdout.split("\n")[0]).toMatch(/^NAME\s+TUNNEL\s+READY\s+URL\s+AGE$/);
    expect(tb.stdout).toMatch(/status-test\s+home\s+\s+https:\/\/x\.example\.com\/\s+\d+s/);
    const tun = await k(["get", "tun"]);
    expect(tun.stdout.split("\n")[0]).toMatch(/^NAME\s+PROVIDER\s+READY\s+ROUTES\s+AGE$/);
    expect(tun.stdout).toMatch(/printer\s+printer-provider/);
    const tp = await kubectl(["get", "tp", "printer-provider"]);
    expect(tp.stdout.split("\n")[0]).toMatch(/^NAME\s+TYPE\s+READY\s+AGE$/);
    expect(tp.stdout).toMatch(/printer-provider\s+edge/);
    const all = await k(["get", "ktube"]);
    expect(all.stdout).toContain("tunnelbinding.ktube.dev/status-test");
    expect(all.stdout).toContain("tunnel.ktube.dev/printer");
  });

  it("explains tunnelbinding.spec.routes from the schema's descriptions", async () => {
    const { stdout, code } = await kubectl(["explain", "tunnelbinding.spec.routes"]);
    expect(code).toBe(0);
    expect(stdout).toContain("Routes from the tunnel to Services, keyed by name.");
    expect(stdout).toMatch(/protocol\s+<string>/);
    expect(stdout).toMatch(/service\s+<Object>/);
    const port = await kubectl(["explain", "tunnelbinding.spec.routes.service.port"]);
    expect(port.stdout).toContain("A port of the Service, by name (`http`) or by number (`8080`).");
  });
});

function docs(file: string): Array<Record<string, unknown>> {
  return parseAllDocuments(readFileSync(join(EXAMPLES, file), "utf8")).map((d) => d.toJS() as Record<string, unknown>);
}

function nameArgs(doc: Record<string, unknown>): string[] {
  const meta = doc.metadata as { name: string; namespace?: string };
  return meta.namespace ? ["-n", meta.namespace, meta.name] : [meta.name];
}
