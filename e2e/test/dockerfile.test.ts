// The container image can only be built where Docker runs (upstream CI); here we check
// that the Dockerfile keeps up with the code it packages.
import { describe, expect, it } from "@jest/globals";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..", "..");

/** The workspace packages an app needs at run time, transitively. */
function workspaceDeps(dir: string, seen = new Set<string>()): Set<string> {
  const pkg = JSON.parse(readFileSync(join(ROOT, dir, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
  for (const name of Object.keys(pkg.dependencies ?? {}).filter((n) => n.startsWith("@ktube/"))) {
    const path = `packages/${name.slice("@ktube/".length)}`;
    if (!seen.has(path)) {
      seen.add(path);
      workspaceDeps(path, seen);
    }
  }
  return seen;
}

for (const app of ["cloudflare-controller", "ngrok-controller", "devtunnels-controller", "edge-controller", "dashboard"]) {
  describe(`apps/${app}/Dockerfile`, () => {
    const dockerfile = readFileSync(join(ROOT, "apps", app, "Dockerfile"), "utf8");

    it("copies every workspace package the controller imports, and no test-only one", () => {
      const needed = [...workspaceDeps(`apps/${app}`)].sort();
      const copied = [...new Set([...dockerfile.matchAll(/^COPY (packages\/[a-z-]+)\/src /gm)].map((m) => m[1]!))].sort();
      expect(copied).toEqual(needed);
    });

    it("runs Node 24 as a non-root user", () => {
      expect(dockerfile).toMatch(/^FROM node:24[-\w.]* AS deps$/m);
      expect(dockerfile.match(/^FROM node:24/gm)).toHaveLength(2);
      expect(dockerfile).toMatch(/^USER 65532:65532$/m);
      expect(dockerfile).toMatch(new RegExp(`^ENTRYPOINT \\["node", "--disable-warning=ExperimentalWarning", "apps/${app}/src/main.ts"\\]$`, "m"));
    });

    if (app === "edge-controller") {
      it("has the tools the uplinks run (the same image, `connector`)", () => {
        // Every command the connector runs: src/connector/{wireguard,nftables}.ts.
        for (const pkg of ["iproute2", "nftables", "wireguard-tools", "wireguard-go"]) expect(dockerfile).toMatch(new RegExp(`apt-get install .*\\b${pkg}\\b`));
      });
    }
  });
}
