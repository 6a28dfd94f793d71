// What every test file of the fake shares: a started fake with one account and token,
// the official SDK pointed at it, and small assertion helpers.
import { expect } from "@jest/globals";
import Cloudflare from "cloudflare";
import { FakeCloudflare, type FakeCloudflareOptions } from "../src/index.ts";

export const TOKEN = "test-token";

export interface Setup {
  fake: FakeCloudflare;
  cf: Cloudflare;
  account: string;
}

export async function startFake(options: FakeCloudflareOptions = {}): Promise<Setup> {
  const fake = new FakeCloudflare(options);
  const account = fake.addAccount();
  fake.addToken(TOKEN, [account]);
  const cf = new Cloudflare({ apiToken: TOKEN, baseURL: await fake.start(), maxRetries: 0 });
  return { fake, cf, account };
}

/** The status and first Cloudflare error code of a call expected to fail with an API error. */
export async function apiError(p: PromiseLike<unknown>): Promise<{ status: number | undefined; code: number | undefined; message: string | undefined }> {
  const error = (await Promise.resolve(p).then(() => undefined, (e: unknown) => e)) as InstanceType<typeof Cloudflare.APIError> | undefined;
  expect(error).toBeInstanceOf(Cloudflare.APIError);
  const first = (error!.errors as Array<{ code: number; message: string }>)[0];
  return { status: error!.status, code: first?.code, message: first?.message };
}

/** A raw call, for what the SDK will not send (out-of-range parameters) or hides (headers). */
export async function rawGet(fake: FakeCloudflare, path: string, token = TOKEN): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const res = await fetch(`${fake.baseUrl}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

/** Takes the schema violations a test provoked on purpose, leaving none for the afterEach check. */
export function takeViolations(fake: FakeCloudflare): string[] {
  const taken = fake.schemaViolations.flatMap((v) => v.violations);
  fake.schemaViolations.length = 0;
  return taken;
}

/** Polls until `check` stops throwing (for effects on another process or socket, never for timing). */
export async function eventually(check: () => void, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
