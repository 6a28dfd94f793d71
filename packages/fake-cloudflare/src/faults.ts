// Faults the fake injects: random 5xx answers (`faultRate`), and holds, which let a test
// stop one chosen request between Cloudflare committing it and the client hearing so.
// The hold is the realistic crash window: the write happened, the client never learnt
// it (it was killed, or it timed out and gave up), and the next run must find the
// result instead of making it twice.
import type { Body } from "./model.ts";
import { canonicalName } from "./operation-names.ts";
import type { RequestRecord } from "./request-log.ts";

/** What a matcher sees of a request that passed validation, authentication and the rate limit. */
export interface HoldCandidate {
  /** Short name, e.g. "tunnels.create". */
  name: string;
  /** The schema's operationId. */
  operation: string;
  method: string;
  path: string;
  params: Readonly<Record<string, string>>;
  body: Body | undefined;
}

/**
 * Which request to hold: a short name ("tunnels.create", "dns.records.batch",
 * "access.applications.create"; "dns_records.batch" is accepted too), a schema
 * operationId, or a predicate.
 */
export type RequestMatcher = string | ((request: HoldCandidate) => boolean);

export interface HoldOptions {
  /**
   * Never answer: the request is applied and its client waits until its own timeout
   * (the realistic commit-without-answer of a POST). `release()` then closes the
   * connection without an answer.
   */
  neverAnswer?: boolean;
}

export interface HeldRequest {
  /** Resolves with the request's record once a matching request has been applied. */
  readonly arrived: Promise<RequestRecord>;
  /**
   * Sends the withheld answer (with `neverAnswer`: drops the connection unanswered).
   * Called before any request matched, it disarms the hold instead. Safe to call after
   * the client went away, and more than once.
   */
  release(): void;
}

/** How the server lets a hold finish a request it took. */
export interface Withheld {
  record: RequestRecord;
  answer(): void;
  drop(): void;
}

class Hold implements HeldRequest {
  readonly arrived: Promise<RequestRecord>;
  readonly matches: (request: HoldCandidate) => boolean;
  readonly neverAnswer: boolean;
  private resolveArrived!: (record: RequestRecord) => void;
  private withheld?: Withheld;
  private state: "armed" | "holding" | "done" = "armed";
  private readonly disarm: (hold: Hold) => void;

  constructor(matcher: RequestMatcher, options: HoldOptions, disarm: (hold: Hold) => void) {
    this.matches = typeof matcher === "function" ? matcher : matchesName(matcher);
    this.neverAnswer = options.neverAnswer ?? false;
    this.disarm = disarm;
    this.arrived = new Promise((resolve) => (this.resolveArrived = resolve));
  }

  take(withheld: Withheld): void {
    this.state = "holding";
    this.withheld = withheld;
    this.resolveArrived(withheld.record);
  }

  release(): void {
    if (this.state === "armed") this.disarm(this);
    if (this.state === "holding") {
      if (this.neverAnswer) this.withheld!.drop();
      else this.withheld!.answer();
    }
    this.state = "done";
  }
}

const matchesName =
  (name: string) =>
  (request: HoldCandidate): boolean =>
    request.name === canonicalName(name) || request.operation === name;

/** The armed holds, first armed first matched; each takes one request. */
export class Holds {
  private readonly armed: Hold[] = [];

  add(matcher: RequestMatcher, options: HoldOptions = {}): HeldRequest {
    const hold = new Hold(matcher, options, (h) => this.armed.splice(this.armed.indexOf(h), 1));
    this.armed.push(hold);
    return hold;
  }

  /** The first armed hold that matches `request`, now no longer armed. */
  take(request: HoldCandidate): Hold | undefined {
    const index = this.armed.findIndex((h) => h.matches(request));
    return index < 0 ? undefined : this.armed.splice(index, 1)[0];
  }
}

export type { Hold };

/**
 * `faultRate` of requests fail with a 5xx, alternately before the change was made (503)
 * and after it (502: committed, but the client hears of a failure).
 */
export class RandomFaults {
  private counter = 0;

  next(rate: number): "before" | "after" | undefined {
    if (rate <= 0 || Math.random() >= rate) return undefined;
    return this.counter++ % 2 === 0 ? "before" : "after";
  }
}
