// What the signed-in user may see and do, asked of the API server as that user:
// lists cluster-wide where allowed, else per namespace; buttons per SelfSubjectAccessReview.
import type { ResourceDescriptor } from "@ktube/api";
import { KubeApiError, type UserClient } from "./kube.ts";
import { resourcePath } from "./resources.ts";

export type Verb = "get" | "list" | "watch" | "create" | "delete";

export async function canI(client: UserClient, verb: Verb, type: ResourceDescriptor<unknown>, namespace?: string): Promise<boolean> {
  const [group] = type.apiVersion.includes("/") ? type.apiVersion.split("/") : [""];
  const review = await client.request<{ status?: { allowed?: boolean } }>("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {
    body: {
      apiVersion: "authorization.k8s.io/v1",
      kind: "SelfSubjectAccessReview",
      spec: { resourceAttributes: { group, resource: type.plural, verb, ...(namespace ? { namespace } : {}) } },
    },
  });
  return review.status?.allowed === true;
}

/** Why a list could not be shown: told apart because each needs a different fix. */
export type ListProblem = { kind: "forbidden"; message: string } | { kind: "not-installed"; message: string };

export interface ListedScope<T> {
  /** Undefined: cluster-wide (or a cluster-scoped kind). */
  namespace?: string;
  items: T[];
  resourceVersion?: string;
  problem?: ListProblem;
}

export interface VisibleList<T> {
  clusterWide: boolean;
  scopes: ListedScope<T>[];
  /** Namespaces not looked into because there were too many to probe one by one. */
  unprobedNamespaces?: number;
}

/** Beyond this many namespaces, a user without cluster-wide list rights picks namespaces with the filter. */
export const DEFAULT_MAX_PROBED_NAMESPACES = 30;

function problemOf(error: unknown): ListProblem | undefined {
  if (!(error instanceof KubeApiError)) return undefined;
  if (error.status === 403) return { kind: "forbidden", message: error.message };
  if (error.status === 404) return { kind: "not-installed", message: error.message };
  return undefined;
}

async function listScope<T>(client: UserClient, type: ResourceDescriptor<T>, namespace?: string): Promise<ListedScope<T>> {
  try {
    const list = await client.list<T>(resourcePath(type, namespace));
    return { ...(namespace ? { namespace } : {}), items: list.items, resourceVersion: list.metadata.resourceVersion };
  } catch (error) {
    const problem = problemOf(error);
    if (!problem) throw error;
    return { ...(namespace ? { namespace } : {}), items: [], problem };
  }
}

/**
 * The objects of `type` this user can list: one cluster-wide list when allowed, else one
 * list per candidate namespace (the user's own, the ones asked for, and every namespace
 * when the user may list namespaces).
 */
export async function listVisible<T>(
  client: UserClient,
  type: ResourceDescriptor<T>,
  candidateNamespaces: string[],
  only?: string,
  maxProbedNamespaces = DEFAULT_MAX_PROBED_NAMESPACES,
): Promise<VisibleList<T>> {
  if (only && type.namespaced) return { clusterWide: false, scopes: [await listScope(client, type, only)] };
  const all = await listScope(client, type);
  if (!type.namespaced || all.problem?.kind !== "forbidden") return { clusterWide: true, scopes: [all] };
  const namespaces = new Set(candidateNamespaces);
  let unprobedNamespaces = 0;
  try {
    const list = await client.list<{ metadata?: { name?: string } }>("/api/v1/namespaces");
    const others = list.items.map((ns) => ns.metadata?.name ?? "").filter((ns) => ns && !namespaces.has(ns));
    // One list per namespace on every render does not scale: past the limit, only the user's own.
    if (namespaces.size + others.length <= maxProbedNamespaces) for (const ns of others) namespaces.add(ns);
    else unprobedNamespaces = others.length;
  } catch (error) {
    if (!problemOf(error)) throw error;
  }
  const scopes = await Promise.all([...namespaces].sort().map((ns) => listScope(client, type, ns)));
  // A namespace the user cannot list is not shown, unless the user named it (then say why it is empty).
  const shown = scopes.filter((s) => s.problem?.kind !== "forbidden" || (s.namespace && candidateNamespaces.includes(s.namespace)));
  return { clusterWide: false, scopes: shown.length > 0 ? shown : [all], ...(unprobedNamespaces ? { unprobedNamespaces } : {}) };
}

/** Asks once per (verb, namespace) within one page render. */
export class AccessCache {
  private readonly answers = new Map<string, Promise<boolean>>();
  private readonly client: UserClient;

  constructor(client: UserClient) {
    this.client = client;
  }

  can(verb: Verb, type: ResourceDescriptor<unknown>, namespace?: string): Promise<boolean> {
    const key = `${verb}/${type.plural}/${namespace ?? ""}`;
    let answer = this.answers.get(key);
    if (!answer) {
      answer = canI(this.client, verb, type, namespace).catch(() => false);
      this.answers.set(key, answer);
    }
    return answer;
  }
}
