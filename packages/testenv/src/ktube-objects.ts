// Reading KTube objects' status in tests, and the child processes tests run (controllers,
// connectors): what every provider app's tests need, in one place.
import { CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import type { ChildProcess } from "node:child_process";
import { eventually } from "./helpers.ts";

export type KtubeKind = "TunnelProvider" | "Tunnel" | "TunnelBinding";

export interface ObjectCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  observedGeneration?: number;
}

export interface KtubeStatus {
  conditions?: ObjectCondition[];
  observedGeneration?: number;
  tunnelId?: string;
  region?: string;
  expiresAt?: string;
  hostKeyFingerprint?: string;
  configVersion?: string;
  boundRoutes?: number;
  routes?: Array<{ name: string; url?: string; ready: boolean; message?: string; reservation?: { id: string; address?: string } }>;
}

const PLURALS: Record<KtubeKind, string> = { TunnelProvider: "tunnelproviders", Tunnel: "tunnels", TunnelBinding: "tunnelbindings" };

/** The status of a KTube object (empty when it has none yet). */
export async function ktubeStatus(kc: KubeConfig, kind: KtubeKind, namespace: string | undefined, name: string): Promise<KtubeStatus> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const plural = PLURALS[kind];
  const object = (namespace
    ? await api.getNamespacedCustomObject({ group: "ktube.dev", version: "v1alpha1", namespace, plural, name })
    : await api.getClusterCustomObject({ group: "ktube.dev", version: "v1alpha1", plural, name })) as { status?: KtubeStatus };
  return object.status ?? {};
}

export const conditionOf = (status: KtubeStatus, type: string): ObjectCondition | undefined => status.conditions?.find((c) => c.type === type);

/** Waits until condition `type` of the object is `state`; returns the object's status. */
export async function waitForKtubeCondition(
  kc: KubeConfig,
  kind: KtubeKind,
  namespace: string | undefined,
  name: string,
  type: string,
  state: { status: string; reason?: string },
  timeoutMs = 20_000,
): Promise<KtubeStatus> {
  return eventually(async () => {
    const s = await ktubeStatus(kc, kind, namespace, name);
    const c = conditionOf(s, type);
    if (c?.status !== state.status || (state.reason && c.reason !== state.reason)) {
      throw new Error(`${kind} ${namespace ?? ""}/${name}: ${type} is ${c?.status}/${c?.reason} (${c?.message}), want ${state.status}/${state.reason ?? "*"}`);
    }
    return s;
  }, timeoutMs, 100);
}

/**
 * Waits until `creationTimestamp` is in a past second. Objects are ordered by it (then by
 * namespace/name), and it has one-second resolution: an object created after this returns is
 * strictly younger, whatever its name.
 */
export async function afterCreationSecond(object: { metadata?: { creationTimestamp?: string | Date } }): Promise<void> {
  const created = new Date(object.metadata?.creationTimestamp ?? 0).getTime();
  await eventually(() => {
    if (Date.now() < created + 1000) throw new Error("still in the creation second");
  }, 2_000, 50);
}

/** A program a test runs as a real process, killed with real signals. */
export class TestProcess {
  readonly child: ChildProcess;
  /** Everything it printed, to check what it said and what it never said. */
  output = "";
  readonly exited: Promise<number | null>;

  constructor(child: ChildProcess) {
    this.child = child;
    child.stdout?.on("data", (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGKILL: no shutdown handler runs, nothing is flushed or released. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }

  /** SIGTERM, and the exit it leads to. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGTERM");
    await this.exited;
  }
}
