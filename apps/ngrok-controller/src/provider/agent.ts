// The one adapter over `@ngrok/ngrok` (1.7.0, pinned: its traps below are that version's).
// The SDK is loaded lazily, so the controller's other modules and tests never load the
// 11 MB native addon. Everything the SDK cannot be trusted with is handled here:
// - connect() can hang forever on a silent server: raced against a timeout, and a session
//   that resolves late is closed;
// - a throwing or async disconnect handler aborts the process: the handler is synchronous,
//   wrapped, and always returns a boolean;
// - the SDK's own reconnect backoff multiplies by 50 with no cap (50 ms, 2.5 s, 125 s, 1 h 44 m),
//   and a session it resumed ignores every later StopTunnel (ngrok-rust 0.18 `try_reconnect`
//   never gives the new stream reader its session: raw_session.rs:469-489, session.rs:696,
//   1119-1171), so an endpoint ngrok stops would stay down unnoticed: by default the SDK may
//   not reconnect at all, and the caller rebuilds the session on its own capped schedule;
// - error codes live only in messages: parsed into NgrokError.
import type { Listener, Session } from "@ngrok/ngrok";
import { fromSdkError, NgrokError } from "./errors.ts";

export interface AgentOptions {
  authtoken: string;
  /** `host:port` of the agent ingress (default: ngrok's). */
  serverAddr?: string;
  /** PEM of the CA that signs the ingress's certificate, where it is not a public one. */
  caPem?: string;
  /** Session metadata, visible in ngrok's dashboard and `GET /tunnel_sessions`. */
  metadata: string;
  clientVersion: string;
  connectTimeoutMs: number;
  /** Seconds between heartbeats (SDK default 10) and how long a missing answer is tolerated (15). */
  heartbeatIntervalS?: number;
  heartbeatToleranceS?: number;
  /** Reconnects the SDK may try by itself per outage before the session is given up (default 0: see above). */
  sdkReconnects?: number;
  /** Heartbeats missed in a row before a session is declared dead (the SDK never ends one for that). */
  maxMissedHeartbeats?: number;
  /** The session is gone for good (transport lost past the SDK's retries, or stopped by ngrok). */
  onDead(error: NgrokError): void;
  /** Heartbeat answered (latency in ms) or missed (null). */
  onHeartbeat?(latencyMs: number | null): void;
  /** The transport dropped and the SDK is reconnecting. */
  onReconnecting?(attempt: number): void;
}

export interface EndpointOptions {
  proto: "http" | "tcp" | "tls";
  domain?: string;
  remoteAddr?: string;
  pooling: boolean;
  metadata: string;
  /** Where the agent forwards each connection: http://, https://, tcp:// URL. */
  forwardTo: string;
  proxyProto?: "1" | "2";
}

export interface AgentEndpoint {
  readonly url: string;
  /** Settles when ngrok stops the endpoint or the session dies; never rejects. */
  readonly closed: Promise<NgrokError>;
  close(): Promise<void>;
}

export interface AgentSession {
  bind(options: EndpointOptions, timeoutMs: number): Promise<AgentEndpoint>;
  close(timeoutMs?: number): Promise<void>;
}

type Sdk = typeof import("@ngrok/ngrok");
let sdk: Promise<Sdk> | undefined;
const loadSdk = (): Promise<Sdk> => (sdk ??= import("@ngrok/ngrok"));

/** Races `promise` against a timeout; `late` gets the value if it arrives after all. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string, late?: (value: T) => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new NgrokError("timeout", `${what} did not finish within ${Math.round(ms / 1000)} s`));
    }, ms);
  });
  promise.then(
    (value) => timedOut && late?.(value),
    () => undefined,
  );
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Opens an agent session; rejects with a typed NgrokError (auth codes, transport, timeout). */
export async function connectAgent(options: AgentOptions): Promise<AgentSession> {
  const { SessionBuilder } = await loadSdk();
  let dead = false;
  let attempts = 0;
  let missed = 0;
  let session: Session | undefined;
  const die = (error: NgrokError): void => {
    if (dead) return;
    dead = true;
    try {
      options.onDead(error);
    } catch {
      // The caller's bug must not take the process down with it.
    }
  };
  const builder = new SessionBuilder()
    .authtoken(options.authtoken)
    .metadata(options.metadata)
    .clientInfo("ktube-ngrok-connector", options.clientVersion)
    .heartbeatInterval(options.heartbeatIntervalS ?? 10)
    .heartbeatTolerance(options.heartbeatToleranceS ?? 15)
    // Synchronous and total: the SDK aborts the process if this throws or returns a Promise.
    .handleDisconnection((_addr: string, error: string): boolean => {
      try {
        attempts++;
        if (dead) return false;
        if (attempts > (options.sdkReconnects ?? 0)) {
          setImmediate(() => die(new NgrokError("transport", `the connection to ngrok was lost (${error})`)));
          return false;
        }
        options.onReconnecting?.(attempts);
        return true;
      } catch {
        return false;
      }
    })
    .handleHeartbeat((latency: number | null) => {
      try {
        const answered = latency !== null && latency !== undefined;
        if (answered) attempts = missed = 0;
        else if (++missed >= (options.maxMissedHeartbeats ?? 2)) setImmediate(() => die(new NgrokError("transport", `ngrok stopped answering heartbeats (${missed} missed)`)));
        options.onHeartbeat?.(answered ? latency : null);
      } catch {
        // ignored: see handleDisconnection
      }
    })
    .handleStopCommand(() => setImmediate(() => die(new NgrokError("closed", "ngrok stopped this agent (stop command from the dashboard or API)"))))
    .handleRestartCommand(() => setImmediate(() => die(new NgrokError("closed", "ngrok asked this agent to restart"))));
  if (options.serverAddr) builder.serverAddr(options.serverAddr);
  if (options.caPem) builder.caCert(Buffer.from(options.caPem));
  try {
    session = await withTimeout(builder.connect(), options.connectTimeoutMs, "connecting to ngrok", (late) => void late.close().catch(() => undefined));
  } catch (error) {
    throw fromSdkError(error, "auth");
  }
  const live = session;
  return {
    async bind(endpoint, timeoutMs) {
      if (dead) throw new NgrokError("closed", "the agent session is closed");
      const listener = await withTimeout(listen(live, endpoint), timeoutMs, `starting endpoint ${endpoint.domain ?? endpoint.remoteAddr ?? endpoint.proto}`, (late) =>
        void late.close().catch(() => undefined),
      ).catch((error: unknown) => {
        throw fromSdkError(error, "bind");
      });
      return wrapListener(listener);
    },
    async close(timeoutMs = 5_000) {
      dead = true;
      await withTimeout(live.close(), timeoutMs, "closing the ngrok session").catch(() => undefined);
    },
  };
}

function listen(session: Session, e: EndpointOptions): Promise<Listener> {
  switch (e.proto) {
    case "http": {
      const b = session.httpEndpoint().poolingEnabled(e.pooling).metadata(e.metadata);
      if (e.domain) b.domain(e.domain);
      // In-cluster certificates rarely name the Service's DNS name; the Service is ours to reach.
      if (e.forwardTo.startsWith("https://")) b.verifyUpstreamTls(false);
      return b.listenAndForward(e.forwardTo);
    }
    case "tcp": {
      const b = session.tcpEndpoint().poolingEnabled(e.pooling).metadata(e.metadata);
      if (e.remoteAddr) b.remoteAddr(e.remoteAddr);
      if (e.proxyProto) b.proxyProto(e.proxyProto);
      return b.listenAndForward(e.forwardTo);
    }
    case "tls": {
      const b = session.tlsEndpoint().poolingEnabled(e.pooling).metadata(e.metadata);
      if (e.domain) b.domain(e.domain);
      if (e.proxyProto) b.proxyProto(e.proxyProto);
      return b.listenAndForward(e.forwardTo);
    }
  }
}

function wrapListener(listener: Listener): AgentEndpoint {
  let closing = false;
  // join() rejects with ListenerClosed{error_code} when ngrok stops the endpoint, and with
  // Reconnect(…) when the session died; it resolves after our own close().
  const closed = listener.join().then(
    () => new NgrokError("closed", closing ? "closed" : "the endpoint was closed"),
    (error: unknown) => fromSdkError(error, "closed"),
  );
  return {
    url: listener.url() ?? "",
    closed,
    async close() {
      closing = true;
      await withTimeout(listener.close(), 5_000, "closing an endpoint").catch(() => undefined);
    },
  };
}
