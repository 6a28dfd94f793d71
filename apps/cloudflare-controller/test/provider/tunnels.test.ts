// The provider-side tunnel: found by name after a create that committed but failed,
// its ingress document round-trips, deletion tolerates what is already gone.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import { renderIngressConfig } from "../../src/provider/ingress.ts";
import {
  deleteTunnel,
  findOrCreateTunnel,
  getIngressConfig,
  getTunnel,
  listTunnels,
  putIngressConfig,
  tunnelName,
  tunnelToken,
} from "../../src/provider/tunnels.ts";
import { startFake, type FakeAccount } from "./fixtures.ts";

let cf: FakeAccount;

beforeAll(async () => {
  cf = await startFake();
});
afterEach(() => cf.fake.configure({ faultRate: 0 }));
afterAll(() => cf.stop());

const named = (name: string) => cf.fake.liveTunnels().filter((t) => t.name === name);

describe("tunnels", () => {
  it("names a Tunnel's cfd_tunnel after its namespace, name and uid", () => {
    expect(tunnelName({ metadata: { namespace: "shop", name: "home", uid: "0123456789abcdef" } })).toBe("ktube-shop-home-01234567");
  });

  it("finds a tunnel whose create committed but answered 5xx, instead of making a second", async () => {
    const api = cf.api();
    const name = "committed-but-failed";
    cf.fake.configure({ faultRate: 1 });
    // Every call fails, half of them after the change was made: within a few attempts a create commits.
    for (let attempt = 0; attempt < 6 && named(name).length === 0; attempt++) {
      await expect(api.call("tunnels.create", (sdk) => sdk.zeroTrust.tunnels.cloudflared.create({ account_id: cf.account, name, config_src: "cloudflare" }))).rejects.toMatchObject({
        reason: "CloudflareUnavailable",
      });
    }
    expect(named(name)).toHaveLength(1);
    cf.fake.configure({ faultRate: 0 });
    const tunnel = await findOrCreateTunnel(api, name);
    expect(tunnel.id).toBe(named(name)[0]!.id);
    expect(named(name)).toHaveLength(1);
    expect(await findOrCreateTunnel(api, name)).toMatchObject({ id: tunnel.id });
  });

  it("lists, reads, configures and deletes a tunnel", async () => {
    const api = cf.api();
    const tunnel = await findOrCreateTunnel(api, "lifecycle");
    expect((await listTunnels(api)).map((t) => t.id)).toContain(tunnel.id);
    expect(await getTunnel(api, tunnel.id)).toMatchObject({ id: tunnel.id, name: "lifecycle" });
    expect(JSON.parse(Buffer.from(await tunnelToken(api, tunnel.id), "base64").toString())).toMatchObject({ t: tunnel.id });

    expect(await getIngressConfig(api, tunnel.id)).toBeUndefined();
    const config = renderIngressConfig([
      { route: { name: "web", protocol: "HTTP", hostname: "shop.example.com", path: "/", service: { name: "web", port: 80 } }, host: "web.shop.svc.cluster.local", port: 80 },
    ]);
    await putIngressConfig(api, tunnel.id, config);
    expect(await getIngressConfig(api, tunnel.id)).toEqual(config);

    cf.fake.setConnections(tunnel.id, 2);
    await deleteTunnel(api, tunnel.id);
    expect(await getTunnel(api, tunnel.id)).toBeUndefined();
    await deleteTunnel(api, tunnel.id); // already gone
    expect((await listTunnels(api)).map((t) => t.id)).not.toContain(tunnel.id);
    expect(cf.fake.schemaViolations).toEqual([]);
  });
});
