// Ownership-checked create, update and delete of the Kubernetes objects a controller
// makes for a Tunnel or a TunnelBinding (connector Deployments, token Secrets...).
//
// A controller never takes over an object it did not create: a name already taken by
// someone else's object is a NameInUseError (DESIGN §Ownership), never a forced
// server-side apply. Objects are made with a plain create; an update is a JSON patch
// whose first op tests the controller ownerReference, so it cannot land on an object
// that is not ours even when the cache is behind or the kind is not cached at all
// (the controller may write Secrets cluster-wide but never read them). Deletes carry
// a uid precondition. Drift of the fields we set is reverted; fields we do not set
// (defaults, other controllers' additions) are left alone. Annotations are set when
// an object is created and not managed after that (other controllers add their own).
import { ApiError, PatchType, type Cache, type KubeClient, type KubeObject, type ResourceType } from "@ktube/runtime";
import { NameInUseError } from "./errors.ts";

export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
/** On objects a binding owns: the TunnelProvider they were made for (a binding may move between providers). */
export const PROVIDER_LABEL = "ktube.dev/provider";

/** The label selector of everything one controller manages. */
export const managedSelector = (managedBy: string): string => `${MANAGED_BY_LABEL}=${managedBy}`;

export interface ControllerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: true;
  blockOwnerDeletion: true;
}

export function controllerReference(owner: KubeObject): ControllerReference {
  return { apiVersion: owner.apiVersion!, kind: owner.kind!, name: owner.metadata!.name!, uid: owner.metadata!.uid!, controller: true, blockOwnerDeletion: true };
}

/** Is `obj` controlled by the object with this uid? */
export const isControlledBy = (obj: KubeObject, uid: string | undefined): boolean =>
  Boolean(uid) && (obj.metadata?.ownerReferences ?? []).some((r) => r.controller && r.uid === uid);

/**
 * Does `live` hold every value `desired` sets? Objects may have more keys (defaults,
 * other writers); lists must have the same length, element by element.
 */
export function covers(live: unknown, desired: unknown): boolean {
  if (desired === undefined) return true;
  if (Array.isArray(desired)) return Array.isArray(live) && live.length === desired.length && desired.every((d, i) => covers(live[i], d));
  if (desired !== null && typeof desired === "object") {
    if (live === null || typeof live !== "object" || Array.isArray(live)) return false;
    return Object.entries(desired).every(([key, value]) => covers((live as Record<string, unknown>)[key], value));
  }
  return live === desired;
}

export type EnsureResult = "created" | "updated" | "unchanged";

/** The shared half: client, cache and the managed-by mark of one controller. */
export class Ownership {
  readonly client: KubeClient;
  readonly cache: Cache;
  readonly managedBy: string;
  private readonly cached = new Set<string>();

  constructor(client: KubeClient, cache: Cache, managedBy: string) {
    this.client = client;
    this.cache = cache;
    this.managedBy = managedBy;
  }

  get selector(): { labelSelector: string } {
    return { labelSelector: managedSelector(this.managedBy) };
  }

  /** Watches `type` (only objects carrying our managed-by label), so reads and drift checks come from the cache. */
  watch(type: ResourceType): void {
    this.cache.informer(type, this.selector);
    this.cached.add(typeKey(type));
  }

  isCached(type: ResourceType): boolean {
    return this.cached.has(typeKey(type));
  }

  /** The owned objects of `owner`; `labels` are stamped on every object it makes. */
  for(owner: KubeObject, labels: Record<string, string> = {}): OwnedObjects {
    return new OwnedObjects(this, owner, labels);
  }
}

/** Objects controlled by one owner (a Tunnel or a TunnelBinding). */
export class OwnedObjects {
  private readonly ownership: Ownership;
  readonly owner: KubeObject;
  private readonly labels: Record<string, string>;

  constructor(ownership: Ownership, owner: KubeObject, labels: Record<string, string> = {}) {
    this.ownership = ownership;
    this.owner = owner;
    this.labels = labels;
  }

  /** The owner's objects of a watched kind in the owner's namespace (carrying this handle's labels). */
  list<T>(type: ResourceType<T>): Array<T & KubeObject> {
    const { cache, selector } = this.ownership;
    const namespace = this.owner.metadata?.namespace;
    return cache
      .list(type, namespace ? { namespace } : {}, selector)
      .filter((o) => isControlledBy(o, this.owner.metadata?.uid) && Object.entries(this.labels).every(([k, v]) => o.metadata?.labels?.[k] === v));
  }

  /** Our object of a watched kind by name; undefined when absent or not ours. */
  get<T>(type: ResourceType<T>, name: string): (T & KubeObject) | undefined {
    const live = this.ownership.cache.get(type, this.owner.metadata?.namespace, name, this.ownership.selector);
    return live && isControlledBy(live, this.owner.metadata?.uid) ? live : undefined;
  }

  /**
   * Creates `desired` (in the owner's namespace, marked as ours and controlled by the
   * owner) or brings the live object back to it. Throws NameInUseError when the name
   * belongs to an object that is not the owner's.
   */
  async ensure(type: ResourceType, desired: KubeObject): Promise<EnsureResult> {
    const object = this.mark(type, desired);
    const name = object.metadata!.name!;
    const { client, cache, selector } = this.ownership;
    if (this.ownership.isCached(type)) {
      const live = cache.get(type, object.metadata?.namespace, name, selector);
      if (live) {
        if (!isControlledBy(live, this.owner.metadata?.uid)) throw this.nameInUse(type, name);
        if (this.upToDate(live, object)) return "unchanged";
        await this.update(type, object);
        return "updated";
      }
    }
    try {
      await client.create(type, object, this.ownership.managedBy);
      return "created";
    } catch (error) {
      if (!(error instanceof ApiError && error.reason === "AlreadyExists")) throw error;
    }
    // Taken: ours if our ownerReference is on it (the cache was behind, or the kind is
    // not cached); the tested patch tells without needing read access.
    await this.update(type, object);
    return "updated";
  }

  /** Deletes our object `name` of a watched kind, if it is there and ours. */
  async delete(type: ResourceType, name: string): Promise<boolean> {
    const live = this.get(type, name);
    if (!live) return false;
    try {
      await this.ownership.client.delete(type, live.metadata?.namespace, name, { uid: live.metadata!.uid! });
    } catch (error) {
      // Gone already, or replaced by a different object of the same name (uid precondition).
      if (error instanceof ApiError && (error.status === 404 || error.status === 409)) return false;
      throw error;
    }
    return true;
  }

  /** Deletes the owner's objects of a watched kind whose names are not in `keep`. */
  async prune(type: ResourceType, keep: Iterable<string> = []): Promise<number> {
    const wanted = new Set(keep);
    let deleted = 0;
    for (const obj of this.list(type)) {
      if (!wanted.has(obj.metadata!.name!) && (await this.delete(type, obj.metadata!.name!))) deleted++;
    }
    return deleted;
  }

  private mark(type: ResourceType, desired: KubeObject): KubeObject {
    return {
      ...desired,
      apiVersion: type.apiVersion,
      kind: type.kind,
      metadata: {
        ...desired.metadata,
        ...(type.namespaced ? { namespace: desired.metadata?.namespace ?? this.owner.metadata?.namespace } : {}),
        labels: { ...desired.metadata?.labels, ...this.labels, [MANAGED_BY_LABEL]: this.ownership.managedBy },
        ownerReferences: [controllerReference(this.owner)],
      },
    };
  }

  private upToDate(live: KubeObject, desired: KubeObject): boolean {
    const { metadata, apiVersion: _v, kind: _k, ...fields } = desired;
    return covers(live.metadata?.labels ?? {}, metadata?.labels) && covers(live, fields);
  }

  /** A JSON patch that only applies to an object controlled by our owner. */
  private async update(type: ResourceType, desired: KubeObject): Promise<void> {
    const { metadata, apiVersion: _v, kind: _k, ...fields } = desired;
    const escape = (key: string): string => key.replaceAll("~", "~0").replaceAll("/", "~1");
    const patch: unknown[] = [
      { op: "test", path: "/metadata/ownerReferences/0/uid", value: this.owner.metadata!.uid },
      ...Object.entries(fields).map(([key, value]) => ({ op: "add", path: `/${escape(key)}`, value })),
      ...Object.entries(metadata?.labels ?? {}).map(([key, value]) => ({ op: "add", path: `/metadata/labels/${escape(key)}`, value })),
    ];
    try {
      await this.ownership.client.patch(type, metadata?.namespace, metadata!.name!, patch, PatchType.json, { fieldManager: this.ownership.managedBy });
    } catch (error) {
      // 422: the test op failed (not ours, or no ownerReferences at all); 404: gone meanwhile.
      if (error instanceof ApiError && error.status === 422) throw this.nameInUse(type, metadata!.name!);
      throw error;
    }
  }

  private nameInUse(type: ResourceType, name: string): NameInUseError {
    const ns = this.owner.metadata?.namespace;
    return new NameInUseError(
      `${type.kind} ${ns ? `${ns}/` : ""}${name} already exists and is not managed by ${this.owner.kind} ${this.owner.metadata?.name}; rename or remove it, KTube will not take it over`,
    );
  }
}

const typeKey = (type: ResourceType): string => `${type.apiVersion}/${type.plural}`;
