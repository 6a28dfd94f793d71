// The informer against a server that answers every watch with 200 and hangs up at once
// (a misbehaving proxy or load balancer): it must back off, not re-watch in a tight loop.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { KubeConfig } from "@kubernetes/client-node";
import { eventually } from "@ktube/testenv";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Informer, KubeClient, sleep } from "../src/index.ts";
import { ConfigMap, testLogger } from "./support.ts";

let server: Server;
let kubeConfig: KubeConfig;
const requests = { lists: 0, watches: 0 };

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.searchParams.get("watch") === "true") {
      requests.watches++;
      res.writeHead(200, { "Content-Type": "application/json" }).end();
      return;
    }
    requests.lists++;
    res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ kind: "ConfigMapList", apiVersion: "v1", metadata: { resourceVersion: "1" }, items: [] }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: "fake", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: "nobody" }],
    contexts: [{ name: "fake", cluster: "fake", user: "nobody" }],
    currentContext: "fake",
  });
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

describe("informer hot-loop guard", () => {
  it("treats a watch that ends at once without events as a failure and backs off", async () => {
    const informer = new Informer(new KubeClient(kubeConfig), ConfigMap, { logger: testLogger("hot-loop") });
    informer.start();
    await informer.waitForSync();
    await eventually(() => expect(requests.watches).toBeGreaterThanOrEqual(2));
    // Backoff from 200 ms doubling: about 5 watches in 3 s. Without the guard, thousands.
    await sleep(3000);
    await informer.stop();
    expect(requests.watches).toBeLessThan(15);
    expect(informer.stats.shortWatches).toBeGreaterThanOrEqual(2);
    expect(requests.lists).toBe(1); // a clean end is not a reason to relist
  });
});
