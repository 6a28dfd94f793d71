// The CLI: started like in a deployment, with only the API server's URL and CA from a kubeconfig.
import { expect, test } from "@jest/globals";
import { freePort, testKubeConfig, eventually } from "@ktube/testenv";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createUsers } from "./fixtures.ts";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));

test("--help describes the flags", async () => {
  const child = spawn(process.execPath, [MAIN, "--help"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const code = await new Promise((resolve) => child.on("exit", resolve));
  expect(code).toBe(0);
  for (const flag of ["--listen", "--kubeconfig", "--api-server", "--api-ca-file", "--public-url", "--max-session-hours"]) expect(out).toContain(flag);
});

test("serves sign-in with the API server from --kubeconfig, using none of its credentials", async () => {
  const kc = testKubeConfig();
  const users = await createUsers(kc, "dash-cli");
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN, "--kubeconfig", process.env.KUBECONFIG!, "--listen", `127.0.0.1:${port}`], { stdio: ["ignore", "pipe", "pipe"] });
  try {
    const base = `http://127.0.0.1:${port}`;
    await eventually(async () => expect((await fetch(`${base}/healthz`)).status).toBe(200), 20_000);
    // Without a session nothing is shown: the kubeconfig's admin identity is not used.
    const anonymous = await fetch(`${base}/providers`, { redirect: "manual" });
    expect(anonymous.status).toBe(303);
    const login = await fetch(`${base}/login`, { method: "POST", headers: { "Content-Type": "application/json", Origin: base }, body: JSON.stringify({ token: users.editorToken }) });
    expect(login.status).toBe(200);
    const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
    const providers = await (await fetch(`${base}/providers`, { headers: { Cookie: cookie } })).text();
    expect(providers).toContain("you cannot list TunnelProviders cluster-wide");
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.on("exit", resolve));
  }
});
